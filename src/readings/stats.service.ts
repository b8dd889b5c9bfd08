import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { formatMicro, Micro, parsePlainDecimal } from '../common/decimal';
import { InvalidInputError, MeterNotFoundError } from '../common/errors';
import { decimalToNumber } from '../common/json-number';
import { AppConfig } from '../config/app-config';
import { MetersRepository } from '../meters/meters.repository';
import { BUCKET_SIZES, bucketEdges, BucketSize, isBucketSize, TooManyBucketsError } from './buckets';
import { classifyPoints } from './counter';
import { BoundaryReadingDto, BucketDto, FiguresDto, StatsResponseDto } from './dto/stats.dto';
import {
  coverage,
  GAP_POLL_INTERVALS,
  LISTED_GAPS,
  meanCurrent,
  RangeFigures,
  rangeFigures,
  TimedReading,
  timeWeightedCurrent,
} from './figures';
import { parsePeriod, Period, PeriodError } from './period';
import { ReadingsRepository } from './readings.repository';

export interface StatsRequest {
  startDate: unknown;
  endDate: unknown;
  timeZone?: unknown;
  bucket?: unknown;
}

@Injectable()
export class StatsService {
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

  /**
   * The period's figures, and with a bucket size the same figures per bucket. The window around the period is read
   * once and classified once; buckets are cut from it here, so they add up exactly to the period.
   */
  async forPeriod(meterId: string, request: StatsRequest): Promise<StatsResponseDto> {
    const period = this.period(request);
    const bucket = parseBucket(request.bucket);
    // Bucket edges are checked (and their number bounded) before the database is asked anything.
    const edges = bucket === undefined ? null : this.edges(period, bucket);
    if (!(await this.meters.findById(meterId))) throw new MeterNotFoundError(meterId);

    const rows = await this.readings.counterWindow(meterId, period.start, period.end);
    const readings: TimedReading[] = rows.map((row) => ({
      at: row.takenAt.getTime(),
      energy: parseStoredDecimal(row.energyKwh),
      current: parseStoredDecimal(row.currentA),
    }));
    const counted = classifyPoints(readings);
    const [whole] = rangeFigures(readings, [period.start.getTime(), period.end.getTime()], this.options('period'), counted);

    const response: StatsResponseDto = {
      meter_id: meterId,
      period: { start: period.start.toISOString(), end: period.end.toISOString(), time_zone: period.timeZone },
      ...toFiguresDto(whole, readings),
    };
    if (bucket !== undefined && edges !== null) {
      response.bucket = bucket;
      response.buckets = rangeFigures(readings, edges, this.options('bucket'), counted).map(
        (figures): BucketDto => ({
          start: new Date(figures.start).toISOString(),
          end: new Date(figures.end).toISOString(),
          ...toFiguresDto(figures, readings),
        }),
      );
    }
    return response;
  }

  private options(scope: keyof typeof LISTED_GAPS) {
    return { maxGapMs: this.maxGapMs, maxListedGaps: LISTED_GAPS[scope] };
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
function toFiguresDto(figures: RangeFigures, readings: readonly TimedReading[]): FiguresDto {
  const from = figures.from === null ? null : readings[figures.from];
  const to = figures.to === null ? null : readings[figures.to];
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
    coverage: coverage(figures),
    gaps: figures.gaps.map((gap) => ({ from: new Date(gap.from).toISOString(), to: new Date(gap.to).toISOString() })),
    gap_count: figures.gapCount,
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

function toBoundary(reading: TimedReading): BoundaryReadingDto {
  return { taken_at: new Date(reading.at).toISOString(), energy_kwh: microToJson(reading.energy) };
}
