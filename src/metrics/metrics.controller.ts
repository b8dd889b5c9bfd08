import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { HEALTH_STATES } from '../meters/meter.entity';
import { MetersRepository } from '../meters/meters.repository';
import { MetricsService } from './metrics.service';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    private readonly meters: MetersRepository,
  ) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOperation({ summary: 'Prometheus metrics: polls by outcome, durations, skipped ticks, meters by state, writes' })
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text exposition format (version 0.0.4)',
    schema: { type: 'string' },
    example:
      '# HELP meters Registered meters by health state\n# TYPE meters gauge\n' +
      'meters{state="unknown"} 0\nmeters{state="up"} 148\nmeters{state="down"} 2\n',
  })
  async scrape(): Promise<string> {
    const counts = await this.meters.countByState().catch(() => null);
    if (counts) for (const state of HEALTH_STATES) this.metrics.metersByState.set({ state }, counts[state]);
    return this.metrics.registry.metrics();
  }
}
