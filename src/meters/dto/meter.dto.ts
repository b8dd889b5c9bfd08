import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import { METER_ID_PATTERN, METER_ID_RULE } from '../../common/meter-id';
import { IsStorableText } from '../../common/text';
import { HEALTH_STATES, Meter } from '../meter.entity';
import type { HealthState } from '../meter.entity';
import { decimalToNumber } from '../../common/json-number';

const PORT_RULE = 'port must be an integer from 1 to 65535, given as a JSON number (not a string)';
const ADDRESS_TYPE = 'address must be a string: an IPv4 or IPv6 literal';
const ADDRESS_LENGTH = 'address must be at most 45 characters: an IPv4 or IPv6 literal';
const NAME_TYPE = 'name must be a string (or null)';
const NAME_LENGTH = 'name must be at most 200 characters';
const LIST_LIMIT_RULE = 'limit must be an integer from 1 to 1000';
/** PostgreSQL's integer; a larger offset would only ever answer an empty page. */
const MAX_OFFSET = 2_147_483_647;
const OFFSET_RULE = `offset must be an integer from 0 to ${MAX_OFFSET}`;

// class-validator runs a property's decorators from the one nearest the property upwards, and with stopAtFirstError
// reports only the first that fails: the type check sits nearest, so that `"name": 123` is told it is not a string.

export class CreateMeterDto {
  /** The meter's own identifier, as it reports it in `id`. */
  @ApiProperty({
    description: `The meter's own identifier, as it reports it in \`id\`: ${METER_ID_RULE}`,
    example: '345631237',
    pattern: METER_ID_PATTERN.source,
  })
  @IsString({ message: `meter_id must be ${METER_ID_RULE}` })
  @Matches(METER_ID_PATTERN, { message: `meter_id must be ${METER_ID_RULE}` })
  meter_id: string;

  /** IPv4 or IPv6 literal inside METER_ALLOWED_NETWORKS (no hostname, scheme, port or path). */
  @ApiProperty({
    description: 'IPv4 or IPv6 literal inside METER_ALLOWED_NETWORKS (no hostname, scheme, port or path)',
    example: '127.0.0.1',
  })
  @MaxLength(45, { message: ADDRESS_LENGTH })
  @IsString({ message: ADDRESS_TYPE })
  address: string;

  /** TCP port, a JSON integer (numeric strings are refused). */
  @ApiProperty({
    type: 'integer',
    description: 'TCP port, a JSON integer (numeric strings are refused)',
    example: 9000,
    minimum: 1,
    maximum: 65535,
  })
  @IsInt({ message: PORT_RULE })
  @Min(1, { message: PORT_RULE })
  @Max(65535, { message: PORT_RULE })
  port: number;

  /** A label for people. */
  @ApiPropertyOptional({
    type: String,
    description: 'A label for people (at most 200 characters)',
    example: 'Workshop main feed',
    nullable: true,
  })
  @IsOptional()
  @IsStorableText()
  @MaxLength(200, { message: NAME_LENGTH })
  @IsString({ message: NAME_TYPE })
  name?: string | null;

  /** Whether the scheduler polls it; false keeps the meter and its history but stops polling. */
  @ApiPropertyOptional({
    description: 'Whether the scheduler polls it; false keeps the meter and its history but stops polling',
    default: true,
    example: true,
  })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

/** Absent is "no change"; null is a value, and only `name` may be null (IsOptional would let null through). */
const present = (_object: object, value: unknown) => value !== undefined;

export class UpdateMeterDto {
  @ApiPropertyOptional({ description: 'New address, with the same rules as on create', example: '127.0.0.1' })
  @ValidateIf(present)
  @MaxLength(45, { message: ADDRESS_LENGTH })
  @IsString({ message: ADDRESS_TYPE })
  address?: string;

  @ApiPropertyOptional({ type: 'integer', description: 'New TCP port, a JSON integer', example: 9001, minimum: 1, maximum: 65535 })
  @ValidateIf(present)
  @IsInt({ message: PORT_RULE })
  @Min(1, { message: PORT_RULE })
  @Max(65535, { message: PORT_RULE })
  port?: number;

  @ApiPropertyOptional({
    type: String,
    description: 'New label; null removes it',
    example: 'Workshop main feed',
    nullable: true,
  })
  @IsOptional()
  @IsStorableText()
  @MaxLength(200, { message: NAME_LENGTH })
  @IsString({ message: NAME_TYPE })
  name?: string | null;

  @ApiPropertyOptional({ description: 'false stops polling and keeps the history; true resumes it', example: false })
  @ValidateIf(present)
  @IsBoolean()
  enabled?: boolean;
}

const toBoolean = ({ value }: { value: unknown }) =>
  value === 'true' ? true : value === 'false' ? false : value;

export class ListMetersQueryDto {
  /** Only meters in this health state. */
  @ApiPropertyOptional({ enum: HEALTH_STATES, description: 'Only meters in this health state', example: 'down' })
  @IsOptional()
  @IsIn(HEALTH_STATES, { message: `state must be one of ${HEALTH_STATES.join(', ')}` })
  state?: HealthState;

  /** Only enabled (true) or disabled (false) meters. */
  @ApiPropertyOptional({ type: Boolean, description: 'Only enabled (true) or disabled (false) meters', example: true })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled?: boolean;

  @ApiPropertyOptional({ type: 'integer', description: 'Page size', default: 100, minimum: 1, maximum: 1000 })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : value))
  @IsInt({ message: LIST_LIMIT_RULE })
  @Min(1, { message: LIST_LIMIT_RULE })
  @Max(1000, { message: LIST_LIMIT_RULE })
  limit: number = 100;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Meters to skip, in meter_id order',
    default: 0,
    minimum: 0,
    maximum: MAX_OFFSET,
  })
  @IsOptional()
  // Up to 15 digits stay exact as a number; longer ones stay strings and fail IsInt, with the same message.
  @Transform(({ value }) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value))
  @IsInt({ message: OFFSET_RULE })
  @Min(0, { message: OFFSET_RULE })
  @Max(MAX_OFFSET, { message: OFFSET_RULE })
  offset: number = 0;
}

export class MeterHealthDto {
  @ApiProperty({ enum: HEALTH_STATES, example: 'up' })
  state: HealthState;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the last poll (successful or not) started; null before the first',
    example: '2026-12-03T10:00:00.000Z',
  })
  last_attempt_at: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the last successful poll started; null before the first',
    example: '2026-12-03T10:00:00.000Z',
  })
  last_success_at: string | null;
  /** Why the last failed poll failed (kept until the next failure). */
  @ApiProperty({ type: String, nullable: true, example: 'timeout: no complete answer within 5000 ms' })
  last_error: string | null;
  @ApiProperty({ type: 'integer', description: 'Failed polls since the last successful one', example: 0 })
  consecutive_failures: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'How long the last poll took; null before the first', example: 12 })
  last_poll_duration_ms: number | null;
}

export class LatestReadingDto {
  @ApiProperty({ example: 37 })
  current_a: number;
  @ApiProperty({ example: 44325 })
  energy_kwh: number;
  @ApiProperty({ format: 'date-time', example: '2026-12-03T10:00:00.000Z' })
  taken_at: string;
}

export class MeterResponseDto {
  @ApiProperty({ example: '345631237' })
  meter_id: string;
  @ApiProperty({ type: String, nullable: true, example: 'Workshop main feed' })
  name: string | null;
  @ApiProperty({ example: '127.0.0.1' })
  address: string;
  @ApiProperty({ type: 'integer', example: 9000 })
  port: number;
  @ApiProperty({ description: 'Whether the scheduler polls it', example: true })
  enabled: boolean;
  @ApiProperty({ type: MeterHealthDto, description: 'Health of its polling (SPEC 4.4)' })
  health: MeterHealthDto;
  @ApiProperty({ type: LatestReadingDto, nullable: true, description: 'Its newest reading; null before the first' })
  latest_reading: LatestReadingDto | null;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T08:00:00.000Z' })
  created_at: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-01T08:00:00.000Z' })
  updated_at: string;
}

export class MeterListResponseDto {
  @ApiProperty({ type: [MeterResponseDto] })
  items: MeterResponseDto[];
  /** How many meters match the filter in all. */
  @ApiProperty({ type: 'integer', description: 'How many meters match the filter in all', example: 150 })
  total: number;
  @ApiProperty({ type: 'integer', description: 'Page size used', example: 100 })
  limit: number;
  @ApiProperty({ type: 'integer', description: 'Meters skipped', example: 0 })
  offset: number;
}

/** A meter as the API answers it, for response examples. */
export const METER_EXAMPLE: MeterResponseDto = {
  meter_id: '345631237',
  name: 'Workshop main feed',
  address: '127.0.0.1',
  port: 9000,
  enabled: true,
  health: {
    state: 'up',
    last_attempt_at: '2026-12-03T10:00:00.000Z',
    last_success_at: '2026-12-03T10:00:00.000Z',
    last_error: null,
    consecutive_failures: 0,
    last_poll_duration_ms: 12,
  },
  latest_reading: { current_a: 37, energy_kwh: 44325.61, taken_at: '2026-12-03T10:00:00.012Z' },
  created_at: '2026-12-01T08:00:00.000Z',
  updated_at: '2026-12-01T08:00:00.000Z',
};

/** A meter just registered: never polled yet. */
export const NEW_METER_EXAMPLE: MeterResponseDto = {
  ...METER_EXAMPLE,
  health: {
    state: 'unknown',
    last_attempt_at: null,
    last_success_at: null,
    last_error: null,
    consecutive_failures: 0,
    last_poll_duration_ms: null,
  },
  latest_reading: null,
};

export function toMeterResponse(meter: Meter): MeterResponseDto {
  return {
    meter_id: meter.meterId,
    name: meter.name,
    address: meter.address,
    port: meter.port,
    enabled: meter.enabled,
    health: {
      state: meter.healthState,
      last_attempt_at: meter.lastAttemptAt?.toISOString() ?? null,
      last_success_at: meter.lastSuccessAt?.toISOString() ?? null,
      last_error: meter.lastError,
      consecutive_failures: meter.consecutiveFailures,
      last_poll_duration_ms: meter.lastPollDurationMs,
    },
    latest_reading:
      meter.lastReadingAt && meter.lastCurrentA !== null && meter.lastEnergyKwh !== null
        ? {
            current_a: decimalToNumber(meter.lastCurrentA),
            energy_kwh: decimalToNumber(meter.lastEnergyKwh),
            taken_at: meter.lastReadingAt.toISOString(),
          }
        : null,
    created_at: meter.createdAt.toISOString(),
    updated_at: meter.updatedAt.toISOString(),
  };
}
