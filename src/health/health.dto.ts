import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/**
 * The bodies of /health/live and /health/ready: terminus' `{status, info, error, details}`. `details` holds every
 * check; `info` the ones that are up, `error` the ones that are down (each with a `message`).
 */

const STATUS = { enum: ['up', 'down'], example: 'up' } as const;
const DOWN_MESSAGE = { description: 'What is wrong (only when down)', example: 'unreachable' } as const;
const DATE_TIME = { type: String, format: 'date-time', nullable: true } as const;

export class DatabaseCheckDto {
  @ApiProperty(STATUS)
  status: 'up' | 'down';
  @ApiPropertyOptional({ example: 3, description: 'How long SELECT 1 took (only when up)' })
  response_time_ms?: number;
  @ApiPropertyOptional({ ...DOWN_MESSAGE, example: 'no answer within 2000 ms' })
  message?: string;
}

export class SchedulerCheckDto {
  @ApiProperty(STATUS)
  status: 'up' | 'down';
  @ApiProperty({ example: true, description: 'POLLING_ENABLED (false: no scheduler, always up)' })
  polling_enabled: boolean;
  @ApiProperty({ ...DATE_TIME, example: '2026-12-03T10:00:00.000Z', description: 'The last tick of the scheduler' })
  last_tick_at: string | null;
  @ApiProperty({ ...DATE_TIME, example: null, description: 'When the cycle under way started (null between cycles)' })
  cycle_running_since: string | null;
  @ApiProperty({ example: 0, description: 'Ticks skipped since start because the previous cycle still ran' })
  skipped_ticks: number;
  @ApiPropertyOptional({ ...DOWN_MESSAGE, example: 'no tick for 125 s' })
  message?: string;
}

export class BufferCheckDto {
  @ApiProperty(STATUS)
  status: 'up' | 'down';
  @ApiProperty({ example: 0, description: 'Poll results waiting to be written' })
  buffered: number;
  @ApiProperty({ example: 560010, description: 'POLL_BUFFER_MAX_RESULTS: beyond it the oldest results are dropped' })
  capacity: number;
  @ApiProperty({ example: 0, description: 'buffered as a percentage of capacity' })
  fill_percent: number;
  @ApiProperty({ example: 80, description: 'Down from this fill on' })
  ready_below_percent: number;
  @ApiProperty({ example: 0, description: 'Poll results dropped since start (down while drops are recent)' })
  dropped: number;
  @ApiProperty({ ...DATE_TIME, example: null, description: 'When results were last dropped' })
  last_dropped_at: string | null;
  @ApiProperty({ ...DATE_TIME, example: null, description: 'Since when writes to the database fail (null while they succeed)' })
  writes_failing_since: string | null;
  @ApiPropertyOptional({ ...DOWN_MESSAGE, example: 'buffer 85% full (not ready from 80%)' })
  message?: string;
}

export class EventLoopDelayDto {
  @ApiProperty({ example: 20.1 })
  p50: number;
  @ApiProperty({ example: 21.4 })
  p99: number;
  @ApiProperty({ example: 35.2 })
  max: number;
}

export class ProcessCheckDto {
  @ApiProperty(STATUS)
  status: 'up' | 'down';
  @ApiProperty({ example: 1 })
  pid: number;
  @ApiProperty({ example: 3600 })
  uptime_seconds: number;
  @ApiProperty({
    type: () => EventLoopDelayDto,
    description:
      'Event loop delay over the last 10 s in ms (the 20 ms sampling interval included); down when the median ' +
      'passes 1000',
  })
  event_loop_delay_ms: EventLoopDelayDto;
  @ApiPropertyOptional({ ...DOWN_MESSAGE, example: 'event loop blocked: median delay 1500 ms over the last 10 s' })
  message?: string;
}

export class ReadinessChecksDto {
  @ApiPropertyOptional({ type: () => DatabaseCheckDto })
  database?: DatabaseCheckDto;
  @ApiPropertyOptional({ type: () => SchedulerCheckDto })
  scheduler?: SchedulerCheckDto;
  @ApiPropertyOptional({ type: () => BufferCheckDto })
  buffer?: BufferCheckDto;
}

export class ReadinessDetailsDto {
  @ApiProperty({ type: () => DatabaseCheckDto })
  database: DatabaseCheckDto;
  @ApiProperty({ type: () => SchedulerCheckDto })
  scheduler: SchedulerCheckDto;
  @ApiProperty({ type: () => BufferCheckDto })
  buffer: BufferCheckDto;
}

const OVERALL = {
  enum: ['ok', 'error', 'shutting_down'],
  example: 'ok',
  description: 'ok (200) when every check is up; error (503) when one is down; shutting_down (503) after SIGTERM',
} as const;

export class ReadinessDto {
  @ApiProperty(OVERALL)
  status: 'ok' | 'error' | 'shutting_down';
  @ApiProperty({ type: () => ReadinessChecksDto, description: 'The checks that are up' })
  info: ReadinessChecksDto;
  @ApiProperty({ type: () => ReadinessChecksDto, description: 'The checks that are down', example: {} })
  error: ReadinessChecksDto;
  @ApiProperty({ type: () => ReadinessDetailsDto, description: 'Every check' })
  details: ReadinessDetailsDto;
}

export class LivenessChecksDto {
  @ApiPropertyOptional({ type: () => ProcessCheckDto })
  process?: ProcessCheckDto;
}

export class LivenessDetailsDto {
  @ApiProperty({ type: () => ProcessCheckDto })
  process: ProcessCheckDto;
}

export class LivenessDto {
  @ApiProperty(OVERALL)
  status: 'ok' | 'error' | 'shutting_down';
  @ApiProperty({ type: () => LivenessChecksDto, description: 'The checks that are up' })
  info: LivenessChecksDto;
  @ApiProperty({ type: () => LivenessChecksDto, description: 'The checks that are down', example: {} })
  error: LivenessChecksDto;
  @ApiProperty({ type: () => LivenessDetailsDto, description: 'Every check' })
  details: LivenessDetailsDto;
}
