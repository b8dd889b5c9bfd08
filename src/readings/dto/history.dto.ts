import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { decimalToNumber } from '../../common/json-number';
import type { HistoryRow } from '../readings.repository';

export const HISTORY_ORDERS = ['asc', 'desc'] as const;
export const HISTORY_FORMATS = ['json', 'csv'] as const;
export const HISTORY_DEFAULT_LIMIT = 100;
export const HISTORY_MAX_LIMIT = 10_000;
/** A real cursor of meter 345631237 (the example meter id) after its reading of 2023-08-12T00:01:31Z. */
const CURSOR_EXAMPLE =
  'eyJvIjoiYXNjIiwiayI6IjIwMjMtMDgtMTJUMDA6MDE6MzEuMDAwMDAwWiIsImMiOiJqa1RyVkpQTkFtb0Z4a1B2In0';
export const CSV_HEADER = 'meter_id,taken_at,current_a,energy_kwh';

const LIMIT_RULE = `limit must be an integer from 1 to ${HISTORY_MAX_LIMIT}`;

/**
 * The history query. `from`, `to`, `tz` and `cursor` are checked by the service (the same bound parser as
 * statistics, the cursor decoder), so their messages match the statistics endpoint's.
 */
export class HistoryQueryDto {
  @ApiPropertyOptional({
    type: String,
    description:
      'Oldest reading to include: an instant (ISO 8601 with offset, included) or a day (DD-MM-YYYY or YYYY-MM-DD, ' +
      'from its first instant in `tz`). Absent: from the first reading',
    example: '2023-08-12T00:00:00Z',
  })
  @IsOptional()
  from?: unknown;

  @ApiPropertyOptional({
    type: String,
    description:
      'Where the history stops: an instant (ISO 8601 with offset, excluded) or a day (included whole, as in ' +
      'statistics). Absent: up to the newest reading',
    example: '2023-08-14T00:00:00Z',
  })
  @IsOptional()
  to?: unknown;

  @ApiPropertyOptional({ type: String, description: 'IANA time zone for day bounds; default STATS_TIMEZONE', example: 'Europe/Berlin' })
  @IsOptional()
  tz?: unknown;

  @ApiPropertyOptional({
    type: 'integer',
    description: `Readings per page (JSON); in CSV the most rows to send (absent: every row)`,
    default: HISTORY_DEFAULT_LIMIT,
    minimum: 1,
    maximum: HISTORY_MAX_LIMIT,
    example: 100,
  })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value))
  @IsInt({ message: LIMIT_RULE })
  @Min(1, { message: LIMIT_RULE })
  @Max(HISTORY_MAX_LIMIT, { message: LIMIT_RULE })
  limit?: number;

  @ApiPropertyOptional({
    type: String,
    enum: HISTORY_ORDERS,
    description: 'asc: oldest first (default); desc: newest first. With a cursor, the cursor\'s order unless given',
    example: 'desc',
  })
  @IsOptional()
  @IsIn(HISTORY_ORDERS, { message: `order must be one of ${HISTORY_ORDERS.join(', ')}` })
  order?: (typeof HISTORY_ORDERS)[number];

  @ApiPropertyOptional({
    type: String,
    description: 'next_cursor of the previous page, as it was given (opaque)',
    example: CURSOR_EXAMPLE,
  })
  @IsOptional()
  cursor?: unknown;

  @ApiPropertyOptional({
    type: String,
    enum: HISTORY_FORMATS,
    description: `csv streams the rows as text/csv with the header ${CSV_HEADER} (same as Accept: text/csv); it wins over Accept`,
    example: 'csv',
  })
  @IsOptional()
  @IsIn(HISTORY_FORMATS, { message: `format must be one of ${HISTORY_FORMATS.join(', ')}` })
  format?: (typeof HISTORY_FORMATS)[number];
}

export class HistoryReadingDto {
  @ApiProperty({ description: 'When the reading was taken (the service\'s clock, UTC)', format: 'date-time', example: '2023-08-12T00:00:31.000Z' })
  taken_at: string;
  @ApiProperty({ description: 'Current in amperes', example: 37 })
  current_a: number;
  @ApiProperty({ description: 'Cumulative energy counter, kWh', example: 44325 })
  energy_kwh: number;
}

export class ReadingsPageDto {
  @ApiProperty({ description: 'The meter', example: '1000' })
  meter_id: string;
  @ApiProperty({ type: String, enum: HISTORY_ORDERS, description: 'Order of the items: asc oldest first, desc newest first', example: 'asc' })
  order: (typeof HISTORY_ORDERS)[number];
  @ApiProperty({ type: 'integer', description: 'Page size asked for', example: 100 })
  limit: number;
  @ApiProperty({ type: [HistoryReadingDto], description: 'The readings of this page, in `order`' })
  items: HistoryReadingDto[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null when this page is the last',
    example: CURSOR_EXAMPLE,
  })
  next_cursor: string | null;
}

/** taken_at to the millisecond, as every other timestamp of the API (Date truncates the same way). */
function takenAtIso(row: HistoryRow): string {
  return `${row.key.slice(0, 23)}Z`;
}

export function toHistoryReadingDto(row: HistoryRow): HistoryReadingDto {
  return {
    taken_at: takenAtIso(row),
    current_a: decimalToNumber(row.currentA),
    energy_kwh: decimalToNumber(row.energyKwh),
  };
}

/** CSV lines of rows (meter ids are [A-Za-z0-9._-], decimals plain: nothing needs quoting). */
export function toCsvLines(meterId: string, rows: readonly HistoryRow[]): string {
  let text = '';
  for (const row of rows) text += `${meterId},${takenAtIso(row)},${row.currentA},${row.energyKwh}\n`;
  return text;
}

/** A page of two readings, for response examples. */
export const READINGS_PAGE_EXAMPLE: ReadingsPageDto = {
  meter_id: '345631237',
  order: 'asc',
  limit: 2,
  items: [
    { taken_at: '2023-08-12T00:00:31.000Z', current_a: 37, energy_kwh: 44325 },
    { taken_at: '2023-08-12T00:01:31.000Z', current_a: 36.5, energy_kwh: 44325.61 },
  ],
  next_cursor: CURSOR_EXAMPLE,
};
