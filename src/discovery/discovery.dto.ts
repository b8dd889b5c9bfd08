import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

const PORT_RULE = 'must be an integer from 1 to 65535';

export class StartDiscoveryDto {
  @ApiProperty({ description: 'IPv4 or IPv6 literal inside METER_ALLOWED_NETWORKS', example: '127.0.0.1' })
  // The type check nearest the property runs first (see CreateMeterDto): 123 is "not a string", not "too long".
  @MaxLength(45, { message: 'address must be at most 45 characters: an IPv4 or IPv6 literal' })
  @IsString({ message: 'address must be a string: an IPv4 or IPv6 literal' })
  address: string;

  @ApiProperty({ description: 'First port to probe', example: 9000, type: 'integer', minimum: 1, maximum: 65535 })
  @IsInt({ message: `port_from ${PORT_RULE}` })
  @Min(1, { message: `port_from ${PORT_RULE}` })
  @Max(65535, { message: `port_from ${PORT_RULE}` })
  port_from: number;

  @ApiProperty({ description: 'Last port to probe (included)', example: 65000, type: 'integer', minimum: 1, maximum: 65535 })
  @IsInt({ message: `port_to ${PORT_RULE}` })
  @Min(1, { message: `port_to ${PORT_RULE}` })
  @Max(65535, { message: `port_to ${PORT_RULE}` })
  port_to: number;

  @ApiPropertyOptional({ description: 'Whether the meters found are polled (default true)', example: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

export class DiscoveredMeterDto {
  @ApiProperty({ description: 'The id it reported, now its meter_id', example: '9000' })
  meter_id: string;
  @ApiProperty({ type: 'integer', example: 9000 })
  port: number;
}

export class KnownPortDto {
  @ApiProperty({ type: 'integer', example: 9001 })
  port: number;
  @ApiProperty({ type: String, nullable: true, example: '9001' })
  meter_id: string | null;
  @ApiProperty({ example: 'a meter is already registered at this address and port' })
  reason: string;
}

export class NotAMeterDto {
  @ApiProperty({ type: 'integer', example: 9002 })
  port: number;
  @ApiProperty({ example: 'refused: connection refused' })
  reason: string;
}

export class DiscoveryJobDto {
  @ApiProperty({ type: 'integer', description: 'The scan id, for GET /discovery/{id}', example: 1 })
  id: number;
  @ApiProperty({ enum: ['running', 'done', 'failed'], example: 'done' })
  status: 'running' | 'done' | 'failed';
  @ApiProperty({ example: '127.0.0.1' })
  address: string;
  @ApiProperty({ type: 'integer', example: 9000 })
  port_from: number;
  @ApiProperty({ type: 'integer', example: 65000 })
  port_to: number;
  @ApiProperty({ type: 'integer', description: 'Ports probed so far', example: 56001 })
  probed: number;
  @ApiProperty({ type: 'integer', description: 'Ports to probe in all', example: 56001 })
  total: number;
  @ApiProperty({ type: [DiscoveredMeterDto], description: 'Meters found and registered (their reported id is their meter_id)' })
  found: DiscoveredMeterDto[];
  @ApiProperty({ type: [KnownPortDto], description: 'Ports already registered, or answering with an id already taken' })
  already_known: KnownPortDto[];
  @ApiProperty({ type: 'integer', description: 'Ports that did not answer like a meter', example: 3 })
  not_a_meter_count: number;
  @ApiProperty({ type: [NotAMeterDto], description: 'The first 100 of them, with the reason' })
  not_a_meter: NotAMeterDto[];
  @ApiProperty({ format: 'date-time', example: '2026-12-03T10:00:00.000Z' })
  started_at: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-03T10:01:10.000Z' })
  finished_at: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Why a failed scan failed', example: null })
  error: string | null;
}

/** A scan of three ports that found one meter, for response examples. */
export const DONE_SCAN_EXAMPLE: DiscoveryJobDto = {
  id: 1,
  status: 'done',
  address: '127.0.0.1',
  port_from: 9000,
  port_to: 9002,
  probed: 3,
  total: 3,
  found: [{ meter_id: '9000', port: 9000 }],
  already_known: [{ port: 9001, meter_id: '9001', reason: 'a meter is already registered at this address and port' }],
  not_a_meter_count: 1,
  not_a_meter: [{ port: 9002, reason: 'refused: connection refused' }],
  started_at: '2026-12-03T10:00:00.000Z',
  finished_at: '2026-12-03T10:00:00.150Z',
  error: null,
};

export const RUNNING_SCAN_EXAMPLE: DiscoveryJobDto = {
  ...DONE_SCAN_EXAMPLE,
  status: 'running',
  probed: 0,
  found: [],
  already_known: [],
  not_a_meter_count: 0,
  not_a_meter: [],
  finished_at: null,
};
