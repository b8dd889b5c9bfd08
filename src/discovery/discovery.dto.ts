import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

const PORT_RULE = 'must be an integer from 1 to 65535';

export class StartDiscoveryDto {
  @ApiProperty({ description: 'IPv4 or IPv6 literal inside METER_ALLOWED_NETWORKS', example: '127.0.0.1' })
  @IsString()
  @MaxLength(45)
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
  @ApiProperty({ example: '9000' })
  meter_id: string;
  @ApiProperty({ example: 9000 })
  port: number;
}

export class KnownPortDto {
  @ApiProperty({ example: 9001 })
  port: number;
  @ApiProperty({ type: String, nullable: true, example: '9001' })
  meter_id: string | null;
  @ApiProperty({ example: 'a meter is already registered at this address and port' })
  reason: string;
}

export class NotAMeterDto {
  @ApiProperty({ example: 9002 })
  port: number;
  @ApiProperty({ example: 'refused: connection refused' })
  reason: string;
}

export class DiscoveryJobDto {
  @ApiProperty({ example: 1 })
  id: number;
  @ApiProperty({ enum: ['running', 'done', 'failed'], example: 'done' })
  status: 'running' | 'done' | 'failed';
  @ApiProperty({ example: '127.0.0.1' })
  address: string;
  @ApiProperty({ example: 9000 })
  port_from: number;
  @ApiProperty({ example: 65000 })
  port_to: number;
  @ApiProperty({ description: 'Ports probed so far', example: 56001 })
  probed: number;
  @ApiProperty({ description: 'Ports to probe in all', example: 56001 })
  total: number;
  @ApiProperty({ type: [DiscoveredMeterDto], description: 'Meters found and registered (their reported id is their meter_id)' })
  found: DiscoveredMeterDto[];
  @ApiProperty({ type: [KnownPortDto], description: 'Ports already registered, or answering with an id already taken' })
  already_known: KnownPortDto[];
  @ApiProperty({ description: 'Ports that did not answer like a meter', example: 3 })
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
