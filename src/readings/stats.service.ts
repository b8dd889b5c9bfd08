import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { formatMicro, Micro, parsePlainDecimal } from '../common/decimal';
import { InvalidInputError, MeterNotFoundError } from '../common/errors';
import { decimalToNumber } from '../common/json-number';
import { AppConfig } from '../config/app-config';
import { MetersRepository } from '../meters/meters.repository';
import { BUCKET_SIZES, bucketEdges, BucketSize, isBucketSize, TooManyBucketsError } from './buckets';
import { classifyPoints } from './counter';
import { BoundaryReadingDto, BucketDto, FiguresDto, StatsResponseDto } from './dto/stats.dto';
import { FigureOptions, GAP_POLL_INTERVALS, LISTED_GAPS, meanCurrent, TimedReading, timeWeightedCurrent } from './figures';
import { parsePeriod, Period, PeriodError } from './period';
import { ReadingsRepository, RollupInputs, RollupRow, WindowRow } from './readings.repository';
import {
  BoundaryReading,
  emptySummary,
  MERGED_GAPS,
  mergeSummaries,
  planSegments,
  rawSummaries,
  Summary,
} from './stats-merge';

/** Where statistics come from: rollups with raw edges (the default), or raw readings only (the reference). */
export type StatsSource = 'rollups' | 'raw';

interface PeriodSummaries {
  whole: Summary;
  buckets: Summary[];
}

export interface StatsRequest {
  startDate: unknown;
  endDate: unknown;
  timeZone?: unknown;
  bucket?: unknown;
}

@Injectable()
export class StatsService implements OnModuleInit {
  private readonly defaultTimeZone: string;
  private readonly maxGapMs: number;

  constructor(
    private readonly readings: ReadingsRepository,
    private readonly meters: MetersRepository,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.defaultTimeZone = config.get('stats', { infer: true }).timeZone;
    this.maxGapMs = GAP_POLL_INTERVALS * config.get('polling', { infer: true }).intervalSeconds * 1000;
  }

  /** New rollup rows are computed with this service's gap threshold (rows computed with another are not used). */
  async onModuleInit(): Promise<void> {
    await this.readings.setRollupGapThreshold(this.maxGapMs);
  }

  /**
   * The period's figures, and with a bucket size the same figures per bucket, which add up exactly to the period.
   * From the rollups (whole UTC days and hours) with raw readings for the parts of an hour at the range edges;
   * `source: 'raw'` computes everything from raw readings (one window read and classified once), as the rollup
   * path does when a rollup row was computed with another gap threshold. Both give the same answer.
   */
  async forPeriod(meterId: string, request: StatsRequest, source: StatsSource = 'rollups'): Promise<StatsResponseDto> {
    const period = this.period(request);
    const bucket = parseBucket(request.bucket);
    // Bucket edges are checked (and their number bounded) before the database is asked anything.
    const edges = bucket === undefined ? null : this.edges(period, bucket);
    if (!(await this.meters.findById(meterId))) throw new MeterNotFoundError(meterId);

    const bounds = [period.start.getTime(), period.end.getTime()];
    const summaries =
      (source === 'rollups' ? await this.fromRollups(meterId, edges ?? bounds) : null) ??
      (await this.fromRaw(meterId, bounds, edges));
    const response: StatsResponseDto = {
      meter_id: meterId,
      period: { start: period.start.toISOString(), end: period.end.toISOString(), time_zone: period.timeZone },
      ...toFiguresDto(summaries.whole, LISTED_GAPS.period),
    };
    if (bucket !== undefined) {
      response.bucket = bucket;
      response.buckets = summaries.buckets.map(
        (figures): BucketDto => ({
          start: new Date(figures.start).toISOString(),
          end: new Date(figures.end).toISOString(),
          ...toFiguresDto(figures, LISTED_GAPS.bucket),
        }),
      );
    }
    return response;
  }

  /** The period and its buckets from one window of raw readings, classified once. */
  private async fromRaw(meterId: string, bounds: number[], edges: number[] | null): Promise<PeriodSummaries> {
    const rows = await this.readings.counterWindow(meterId, new Date(bounds[0]), new Date(bounds[1]));
    const readings = rows.map(toTimedReading);
    const counted = classifyPoints(readings);
    const [whole] = rawSummaries(readings, bounds, this.options(), counted);
    return { whole, buckets: edges === null ? [] : rawSummaries(readings, edges, this.options(), counted) };
  }

  /**
   * The ranges [edges[k], edges[k + 1]) from rollup rows and raw edge segments (stats-merge.ts), and the period as
   * their merge. Null when a rollup row it needs, whose readings are still stored, was computed with another gap
   * threshold even after recomputing it.
   */
  private async fromRollups(meterId: string, edges: number[], recomputed = false): Promise<PeriodSummaries | null> {
    const plans = edges.slice(1).map((end, k) => planSegments(edges[k], end));
    const raw: { start: number; end: number }[] = [];
    const hours: number[] = [];
    const days: number[] = [];
    for (const segment of plans.flat()) {
      if (segment.kind === 'raw') raw.push(segment);
      else (segment.kind === 'hour' ? hours : days).push(segment.start);
    }
    const inputs = await this.readRollups(meterId, raw, hours, days);
    if (inputs === null) return null;
    const { windows, hourRows, dayRows } = inputs;
    // A row computed with another gap threshold (POLL_INTERVAL_SECONDS changed since) is recomputed from its raw
    // readings, unless they are gone (retention): then it is all there is, and it serves as it is, its gaps judged
    // by the interval of its time (a break test got zeros for expired months).
    const stale = [...hourRows.map((row) => ['hour', row] as const), ...dayRows.map((row) => ['day', row] as const)]
      .filter(([, row]) => Number(row.max_gap_ms) !== this.maxGapMs)
      .map(([size, row]) => rollupSummary(row, size).end);
    if (stale.length > 0) {
      const oldest = await this.readings.rawReadingsSince(meterId);
      if (oldest !== null && Math.max(...stale) > oldest.getTime()) {
        if (recomputed) return null;
        await this.readings.markStaleRollups(meterId, this.maxGapMs, oldest);
        return this.fromRollups(meterId, edges, true);
      }
    }
    const rollups = { hour: new Map<number, Summary>(), day: new Map<number, Summary>() };
    for (const [size, rows] of [['hour', hourRows], ['day', dayRows]] as const) {
      for (const row of rows) {
        const summary = rollupSummary(row, size);
        rollups[size].set(summary.start, summary);
      }
    }
    const rawParts = new Map<number, Summary>();
    raw.forEach((segment, i) => {
      const [summary] = rawSummaries(windows[i].map(toTimedReading), [segment.start, segment.end], this.options());
      rawParts.set(segment.start, summary);
    });
    // A part with no reading has no row: the range's start and end are set once its parts are merged.
    const buckets = plans.map((segments, k) => {
      const merged = segments.reduce((range, segment) => {
        const part = segment.kind === 'raw' ? rawParts.get(segment.start) : rollups[segment.kind].get(segment.start);
        return part ? mergeSummaries(range, part) : range;
      }, emptySummary(edges[k], edges[k]));
      return { ...merged, start: edges[k], end: edges[k + 1] };
    });
    const whole = buckets.reduce(mergeSummaries, emptySummary(edges[0], edges[0]));
    return { whole: { ...whole, end: edges[edges.length - 1] }, buckets };
  }

  /**
   * The rollup rows and raw edges, after bringing the meter's dirty hours up to date. A writer may dirty them again
   * in between: then refresh and read again, twice at most, before falling back to raw readings (null).
   */
  private async readRollups(
    meterId: string,
    raw: readonly { start: number; end: number }[],
    hours: readonly number[],
    days: readonly number[],
  ): Promise<RollupInputs | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.readings.refreshRollups(meterId);
      const inputs = await this.readings.rollupInputs(meterId, raw, hours, days);
      if (inputs !== null) return inputs;
    }
    return null;
  }

  private options(): FigureOptions {
    return { maxGapMs: this.maxGapMs, maxListedGaps: MERGED_GAPS };
  }

  private period(request: StatsRequest): Period {
    const timeZone = request.timeZone ?? this.defaultTimeZone;
    if (typeof timeZone !== 'string') throw new InvalidInputError('tz must be an IANA time zone name');
    try {
      return parsePeriod(request.startDate, request.endDate, timeZone);
    } catch (error) {
      if (error instanceof PeriodError) throw new InvalidInputError(error.message);
      throw error;
    }
  }

  private edges(period: Period, bucket: BucketSize): number[] {
    try {
      return bucketEdges(period, bucket);
    } catch (error) {
      if (error instanceof TooManyBucketsError) throw new InvalidInputError(error.message);
      throw error;
    }
  }
}

function parseBucket(raw: unknown): BucketSize | undefined {
  if (raw === undefined) return undefined;
  if (!isBucketSize(raw)) {
    throw new InvalidInputError(`bucket must be one of ${BUCKET_SIZES.join(', ')} (given once)`);
  }
  return raw;
}

/** Period and bucket figures alike: exact values become JSON numbers here, once. */
function toFiguresDto(figures: Summary, listedGaps: number): FiguresDto {
  const { from, to } = figures;
  const consumption = microToJson(figures.consumption);
  const hours = from && to ? (to.at - from.at) / 3_600_000 : 0;
  const current = figures.current;
  return {
    readings: figures.readings,
    first_reading_at: isoOrNull(figures.firstAt),
    last_reading_at: isoOrNull(figures.lastAt),
    current_a:
      current === null
        ? null
        : {
            avg: meanCurrent(current, figures.readings),
            time_weighted_avg: timeWeightedCurrent(current, figures.readings),
            min: microToJson(current.min),
            max: microToJson(current.max),
          },
    consumption_kwh: consumption,
    average_power_kw: hours > 0 ? consumption / hours : null,
    resets: figures.resets,
    misreads: figures.misreads,
    consumption_from: from && toBoundary(from),
    consumption_to: to && toBoundary(to),
    coverage: figures.spanMs > 0 ? figures.coveredMs / figures.spanMs : null,
    gaps: figures.gaps
      .slice(0, listedGaps)
      .map((gap) => ({ from: new Date(gap.from).toISOString(), to: new Date(gap.to).toISOString() })),
    gap_count: figures.gapCount,
  };
}

function toTimedReading(row: WindowRow): TimedReading {
  return { at: row.takenAt.getTime(), energy: parseStoredDecimal(row.energyKwh), current: parseStoredDecimal(row.currentA) };
}

/** A rollup row as the Summary of its UTC hour or day. */
function rollupSummary(row: RollupRow, size: 'hour' | 'day'): Summary {
  const start = Number(row.bucket_start);
  const firstAt = Number(row.first_at);
  const lastAt = Number(row.last_at);
  return {
    start,
    end: start + (size === 'hour' ? 3_600_000 : 86_400_000),
    readings: row.readings,
    firstAt,
    lastAt,
    current: {
      sum: parseStoredDecimal(row.current_sum),
      min: parseStoredDecimal(row.current_min),
      max: parseStoredDecimal(row.current_max),
      heldSum: parseStoredDecimal(row.current_held),
      heldMs: lastAt - firstAt,
    },
    lastCurrent: parseStoredDecimal(row.current_last),
    consumption: parseStoredDecimal(row.consumption_kwh),
    resets: row.resets,
    misreads: row.misreads,
    from: { at: Number(row.from_at), energy: parseStoredDecimal(row.from_energy) },
    to: row.to_at === null || row.to_energy === null ? null : { at: Number(row.to_at), energy: parseStoredDecimal(row.to_energy) },
    spanMs: Number(row.span_ms),
    coveredMs: Number(row.covered_ms),
    gapCount: row.gap_count,
    gaps: row.gap_from_ms.map((from, i) => ({ from: Number(from), to: Number(row.gap_to_ms[i]) })),
  };
}

function parseStoredDecimal(value: string): Micro {
  const micro = parsePlainDecimal(value);
  if (micro === null) throw new Error(`stored value is not a plain decimal: ${value}`);
  return micro;
}

function microToJson(value: Micro): number {
  return decimalToNumber(formatMicro(value));
}

function isoOrNull(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}

function toBoundary(reading: BoundaryReading): BoundaryReadingDto {
  return { taken_at: new Date(reading.at).toISOString(), energy_kwh: microToJson(reading.energy) };
}
