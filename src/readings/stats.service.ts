import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { formatMicro, Micro, parsePlainDecimal } from '../common/decimal';
import { InvalidInputError, MeterNotFoundError } from '../common/errors';
import { decimalToNumber } from '../common/json-number';
import { AppConfig } from '../config/app-config';
import { MetersRepository } from '../meters/meters.repository';
import { summarizePeriod } from './counter';
import { BoundaryReadingDto, StatsResponseDto } from './dto/stats.dto';
import { parsePeriod, Period, PeriodError } from './period';
import { CounterRow, ReadingsRepository } from './readings.repository';

export interface StatsRequest {
  startDate: unknown;
  endDate: unknown;
  timeZone?: unknown;
}

@Injectable()
export class StatsService {
  private readonly defaultTimeZone: string;

  constructor(
    private readonly readings: ReadingsRepository,
    private readonly meters: MetersRepository,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.defaultTimeZone = config.get('stats', { infer: true }).timeZone;
  }

  async forPeriod(meterId: string, request: StatsRequest): Promise<StatsResponseDto> {
    const period = this.period(request);
    if (!(await this.meters.findById(meterId))) throw new MeterNotFoundError(meterId);
    const [current, window] = await Promise.all([
      this.readings.currentAggregate(meterId, period.start, period.end),
      this.readings.counterWindow(meterId, period.start, period.end),
    ]);
    const counter = countPeriod(window, period);
    const hours =
      counter.from && counter.to ? (counter.to.takenAt.getTime() - counter.from.takenAt.getTime()) / 3_600_000 : 0;
    const consumption = decimalToNumber(formatMicro(counter.consumption));
    return {
      meter_id: meterId,
      period: { start: period.start.toISOString(), end: period.end.toISOString(), time_zone: period.timeZone },
      readings: current.readings,
      first_reading_at: current.firstReadingAt?.toISOString() ?? null,
      last_reading_at: current.lastReadingAt?.toISOString() ?? null,
      current_a:
        current.avg !== null && current.min !== null && current.max !== null
          ? { avg: decimalToNumber(current.avg), min: decimalToNumber(current.min), max: decimalToNumber(current.max) }
          : null,
      consumption_kwh: consumption,
      average_power_kw: hours > 0 ? consumption / hours : null,
      resets: counter.resets,
      misreads: counter.misreads,
      consumption_from: counter.from && toBoundary(counter.from),
      consumption_to: counter.to && toBoundary(counter.to),
    };
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
}

interface PeriodCount {
  consumption: Micro;
  resets: number;
  misreads: number;
  from: CounterRow | null;
  to: CounterRow | null;
}

/** Applies the counter rules to the window around the period and sums what is booked inside it. */
function countPeriod(window: readonly CounterRow[], period: Period): PeriodCount {
  const summary = summarizePeriod(
    window.map((row) => ({ energy: parseStoredDecimal(row.energyKwh) })),
    (i) => window[i].takenAt >= period.start && window[i].takenAt < period.end,
  );
  const fromIndex = summary.baselineIndex ?? summary.firstCounted;
  return {
    consumption: summary.consumption,
    resets: summary.resets,
    misreads: summary.misreads,
    from: fromIndex === null ? null : window[fromIndex],
    to: summary.lastValid === null ? null : window[summary.lastValid],
  };
}

function parseStoredDecimal(value: string): Micro {
  const micro = parsePlainDecimal(value);
  if (micro === null) throw new Error(`stored energy is not a plain decimal: ${value}`);
  return micro;
}

function toBoundary(row: CounterRow): BoundaryReadingDto {
  return { taken_at: row.takenAt.toISOString(), energy_kwh: decimalToNumber(row.energyKwh) };
}
