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
  @ApiProperty({ example: 0, description: 'Poll results waiting to be written' })
  buffered_results: number;
}

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
    const database = await this.dataSource
      .query('SELECT 1')
      .then(() => true)
      .catch(() => false);
    const scheduler = this.polling.schedulerAlive;
    const healthy = database && scheduler;
    response.status(healthy ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: healthy ? 'ok' : 'degraded',
      database,
      scheduler,
      buffered_results: this.writer.stats.buffered,
    };
  }
}
