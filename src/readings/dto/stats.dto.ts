import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { BUCKET_SIZES, type BucketSize, MAX_BUCKETS } from '../buckets';
import { GAP_POLL_INTERVALS, LISTED_GAPS } from '../figures';

/**
 * Bounds of a statistics period. Types are checked by parsePeriod, not here, so that every bad bound gets the
 * same message whether it came in the query string or in a JSON body.
 */
export class StatsQueryDto {
  /** First day (DD-MM-YYYY or YYYY-MM-DD, a whole calendar day in `tz`) or an instant (ISO 8601 with offset). */
  @ApiPropertyOptional({
    type: String,
    description:
      'First day (DD-MM-YYYY or YYYY-MM-DD, a whole calendar day in `tz`) or an instant (ISO 8601 with offset)',
    example: '12-08-2023',
  })
  @IsOptional()
  start_date?: unknown;

  /** Last day, included whole (DD-MM-YYYY or YYYY-MM-DD), or an instant excluded from the period (ISO 8601 with offset). */
  @ApiPropertyOptional({
    type: String,
    description:
      'Last day, included whole (DD-MM-YYYY or YYYY-MM-DD), or an instant excluded from the period (ISO 8601 with offset)',
    example: '14-08-2023',
  })
  @IsOptional()
  end_date?: unknown;

  /** IANA time zone for date-only bounds; default STATS_TIMEZONE. */
  @ApiPropertyOptional({
    type: String,
    description: 'IANA time zone for date-only bounds; default STATS_TIMEZONE',
    example: 'Europe/Berlin',
  })
  @IsOptional()
  tz?: unknown;

  /** Adds a `buckets` series: local clock hours, calendar days or calendar months in `tz`. */
  @ApiPropertyOptional({
    type: String,
    enum: BUCKET_SIZES,
    description:
      'Adds a `buckets` series with the same figures per local clock hour, calendar day or calendar month in `tz` ' +
      `(a day across a daylight-saving change is 23 or 25 hours; at most ${MAX_BUCKETS} buckets)`,
    example: 'day',
  })
  @IsOptional()
  bucket?: unknown;
}

export class CurrentStatsDto {
  /** Plain mean of the samples in the period. */
  @ApiProperty({ description: 'Plain mean of the samples (every reading counts once)', example: 24.5 })
  avg: number;
  /**
   * Mean over time: each reading holds its value until the next reading, from the first reading to the last (the
   * last closes the span and carries no weight); with a single reading, that reading's value.
   */
  @ApiProperty({
    description:
      'Mean over time: each reading holds its value until the next reading, from the first reading to the last ' +
      '(the last closes the span and carries no weight); with a single reading, its value. Unlike `avg`, a burst ' +
      'of close readings does not outweigh a long quiet stretch',
    example: 23.75,
  })
  time_weighted_avg: number;
  @ApiProperty({ description: 'Lowest sample', example: 0 })
  min: number;
  @ApiProperty({ description: 'Highest sample', example: 50 })
  max: number;
}

export class BoundaryReadingDto {
  @ApiProperty({ description: 'When the reading was taken', format: 'date-time', example: '2023-08-11T23:59:00.000Z' })
  taken_at: string;
  @ApiProperty({ description: 'Its counter value, kWh', example: 44325 })
  energy_kwh: number;
}

export class GapDto {
  @ApiProperty({ description: 'The reading before the gap', format: 'date-time', example: '2023-08-12T10:00:00.000Z' })
  from: string;
  @ApiProperty({ description: 'The reading after the gap', format: 'date-time', example: '2023-08-12T13:30:00.000Z' })
  to: string;
}

export class PeriodDto {
  @ApiProperty({ description: 'First instant of the period (included)', format: 'date-time', example: '2023-08-12T00:00:00.000Z' })
  start: string;
  /** Excluded: the period is [start, end). */
  @ApiProperty({ description: 'End of the period (excluded): [start, end)', format: 'date-time', example: '2023-08-15T00:00:00.000Z' })
  end: string;
  @ApiProperty({ description: 'IANA zone of date-only bounds and bucket edges', example: 'UTC' })
  time_zone: string;
}

/** The figures a period and each of its buckets carry. */
export class FiguresDto {
  /** Readings taken in the range. */
  @ApiProperty({ type: 'integer', description: 'Readings taken in the range (misreads included)', example: 100 })
  readings: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'First reading in the range', example: '2023-08-12T00:00:00.000Z' })
  first_reading_at: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Last reading in the range', example: '2023-08-14T23:59:00.000Z' })
  last_reading_at: string | null;
  /** Null when the range has no reading. */
  @ApiProperty({ type: CurrentStatsDto, nullable: true, description: 'Current in amperes; null when the range has no reading' })
  current_a: CurrentStatsDto | null;
  /**
   * Energy used in the range: the counter steps booked at readings inside it, counted from the last reading
   * before the start; a reset counts the new counter's value, a misread is skipped (SPEC 5.3).
   */
  @ApiProperty({
    description:
      'Energy used, kWh: the counter steps booked at readings inside the range, counted from the last reading before ' +
      'its start; a reset counts the new counter\'s value, a misread is skipped (SPEC 5.3). Buckets add up to the period exactly',
    example: 125.5,
  })
  consumption_kwh: number;
  /** consumption_kwh divided by the hours from `consumption_from` to the last reading; null when that span is zero. */
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'consumption_kwh over the hours from consumption_from to consumption_to; null when that span is zero',
    example: 2.61,
  })
  average_power_kw: number | null;
  @ApiProperty({ type: 'integer', description: 'Readings in the range taken as a meter replacement (the counter went down and stayed down)', example: 0 })
  resets: number;
  @ApiProperty({ type: 'integer', description: 'Readings in the range ignored as misreads (a single dip, stored and flagged)', example: 0 })
  misreads: number;
  /** The reading consumption counts from (the last counted one before the start, else the first in the range). */
  @ApiProperty({
    type: BoundaryReadingDto,
    nullable: true,
    description: 'The reading consumption counts from: the last counted one before the start, else the first in the range',
  })
  consumption_from: BoundaryReadingDto | null;
  /** The last reading in the range that counts (a misread does not). */
  @ApiProperty({ type: BoundaryReadingDto, nullable: true, description: 'The last reading in the range that counts (a misread does not)' })
  consumption_to: BoundaryReadingDto | null;
  /**
   * Error envelope: the share of the time from consumption_from to consumption_to spanned by consecutive counted
   * readings no further apart than 2.5 poll intervals; null when that span is zero.
   */
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'Share (0..1) of the time from consumption_from to consumption_to spanned by consecutive counted readings no ' +
      `further apart than ${GAP_POLL_INTERVALS} x POLL_INTERVAL_SECONDS; the rest is in gaps, whose energy is known ` +
      'but not when it was used. Null when that span is zero',
    example: 0.9975,
  })
  coverage: number | null;
  @ApiProperty({
    type: [GapDto],
    description:
      `Consecutive counted readings further apart than ${GAP_POLL_INTERVALS} x POLL_INTERVAL_SECONDS, oldest first: ` +
      `the first ${LISTED_GAPS.period} of the period, ${LISTED_GAPS.bucket} of a bucket (gap_count counts them all)`,
  })
  gaps: GapDto[];
  @ApiProperty({ type: 'integer', description: 'How many gaps there are in all (gaps lists the first ones)', example: 1 })
  gap_count: number;
}

export class BucketDto extends FiguresDto {
  @ApiProperty({ description: 'First instant of the bucket (a local hour, day or month, cut at the period start)', format: 'date-time', example: '2023-10-28T22:00:00.000Z' })
  start: string;
  @ApiProperty({ description: 'End of the bucket, excluded (cut at the period end)', format: 'date-time', example: '2023-10-29T23:00:00.000Z' })
  end: string;
}

export class StatsResponseDto extends FiguresDto {
  @ApiProperty({ description: 'The meter', example: '1000' })
  meter_id: string;
  @ApiProperty({ type: PeriodDto, description: 'The period [start, end) the figures are for' })
  period: PeriodDto;
  @ApiPropertyOptional({ type: String, enum: BUCKET_SIZES, description: 'The bucket size asked for (only with `bucket`)', example: 'day' })
  bucket?: BucketSize;
  @ApiPropertyOptional({
    type: [BucketDto],
    description:
      'Only with `bucket`: the period cut at local bucket edges, oldest first, empty buckets included. Their ' +
      'consumption, readings, resets and misreads add up exactly to the period\'s',
  })
  buckets?: BucketDto[];
}

/** Statistics of three days of one-minute readings, for response examples. */
export const STATS_EXAMPLE: StatsResponseDto = {
  meter_id: '345631237',
  period: { start: '2023-08-12T00:00:00.000Z', end: '2023-08-15T00:00:00.000Z', time_zone: 'UTC' },
  readings: 4320,
  first_reading_at: '2023-08-12T00:00:31.000Z',
  last_reading_at: '2023-08-14T23:59:31.000Z',
  current_a: { avg: 24.5, time_weighted_avg: 23.75, min: 0, max: 50 },
  consumption_kwh: 188.25,
  average_power_kw: 2.61,
  resets: 0,
  misreads: 1,
  consumption_from: { taken_at: '2023-08-11T23:59:31.000Z', energy_kwh: 44325 },
  consumption_to: { taken_at: '2023-08-14T23:59:31.000Z', energy_kwh: 44513.25 },
  coverage: 0.9975,
  gaps: [{ from: '2023-08-13T10:00:31.000Z', to: '2023-08-13T10:11:31.000Z' }],
  gap_count: 1,
};
