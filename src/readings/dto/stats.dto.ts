import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';

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
}

export class CurrentStatsDto {
  /** Plain mean of the samples in the period. */
  @ApiProperty({ example: 24.5 })
  avg: number;
  @ApiProperty({ example: 0 })
  min: number;
  @ApiProperty({ example: 50 })
  max: number;
}

export class BoundaryReadingDto {
  @ApiProperty({ format: 'date-time', example: '2023-08-11T23:59:00.000Z' })
  taken_at: string;
  @ApiProperty({ example: 44325 })
  energy_kwh: number;
}

export class PeriodDto {
  @ApiProperty({ format: 'date-time', example: '2023-08-12T00:00:00.000Z' })
  start: string;
  /** Excluded: the period is [start, end). */
  @ApiProperty({ format: 'date-time', example: '2023-08-15T00:00:00.000Z' })
  end: string;
  @ApiProperty({ example: 'UTC' })
  time_zone: string;
}

export class StatsResponseDto {
  @ApiProperty({ example: '1000' })
  meter_id: string;
  @ApiProperty()
  period: PeriodDto;
  /** Readings taken in the period. */
  @ApiProperty({ example: 100 })
  readings: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2023-08-12T00:00:00.000Z' })
  first_reading_at: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2023-08-14T23:59:00.000Z' })
  last_reading_at: string | null;
  /** Null when the period has no reading. */
  @ApiProperty({ type: CurrentStatsDto, nullable: true })
  current_a: CurrentStatsDto | null;
  /**
   * Energy used in the period: the counter steps booked at readings inside it, counted from the last reading
   * before the start; a reset counts the new counter's value, a misread is skipped (SPEC 5.3).
   */
  @ApiProperty({ example: 125.5 })
  consumption_kwh: number;
  /** consumption_kwh divided by the hours from `consumption_from` to the last reading; null when that span is zero. */
  @ApiProperty({ type: Number, nullable: true, example: 2.61 })
  average_power_kw: number | null;
  @ApiProperty({ example: 0 })
  resets: number;
  @ApiProperty({ example: 0 })
  misreads: number;
  /** The reading consumption counts from (the last counted one before the start, else the first in the period). */
  @ApiProperty({ type: BoundaryReadingDto, nullable: true })
  consumption_from: BoundaryReadingDto | null;
  /** The last reading in the period that counts (a misread does not). */
  @ApiProperty({ type: BoundaryReadingDto, nullable: true })
  consumption_to: BoundaryReadingDto | null;
}
