import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { PollingService } from '../polling/polling.service';
import { ReadingWriter } from '../polling/reading-writer';

export class HealthDto {
  @ApiProperty({ enum: ['ok', 'degraded'], example: 'ok', description: 'degraded (answered with 503) when database or scheduler is false' })
  status: 'ok' | 'degraded';
  @ApiProperty({ example: true })
  database: boolean;
  @ApiProperty({ example: true, description: 'The scheduler ticked within two intervals (true when polling is off)' })
  scheduler: boolean;
  @ApiProperty({
    example: 0,
    description: 'Poll results waiting to be written (held while the database is unreachable, up to POLL_BUFFER_MAX_RESULTS)',
  })
  buffered_results: number;
  @ApiProperty({ example: 0, description: 'Poll results dropped since start, oldest first, because the buffer was full' })
  dropped_results: number;
  @ApiProperty({
    example: null,
    nullable: true,
    type: String,
    format: 'date-time',
    description: 'Since when writes to the database fail (null while they succeed)',
  })
  writes_failing_since: string | null;
}

/** A database that does not answer within this is reported down (a blackholed connection would wait 5 s). */
const DATABASE_CHECK_TIMEOUT_MS = 2000;

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly polling: PollingService,
    private readonly writer: ReadingWriter,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Database reachable and scheduler alive' })
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto })
  async health(@Res({ passthrough: true }) response: Response): Promise<HealthDto> {
    const database = await this.databaseReachable();
    const scheduler = this.polling.schedulerAlive;
    const healthy = database && scheduler;
    response.status(healthy ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: healthy ? 'ok' : 'degraded',
      database,
      scheduler,
      buffered_results: this.writer.stats.buffered,
      dropped_results: this.writer.stats.dropped,
      writes_failing_since: this.writer.stats.failingSince?.toISOString() ?? null,
    };
  }

  private async databaseReachable(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const check = this.dataSource.query('SELECT 1').then(
      () => true,
      () => false,
    );
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DATABASE_CHECK_TIMEOUT_MS)));
    try {
      return await Promise.race([check, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
