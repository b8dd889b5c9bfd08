import { Controller, Get, HttpStatus, Logger, OnModuleDestroy, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService, HealthIndicatorFunction } from '@nestjs/terminus';
import type { Response } from 'express';
import { LivenessDto, ReadinessDto } from './health.dto';
import { HealthIndicators } from './health.indicators';

const READY_DESCRIPTION =
  'Ready: PostgreSQL answers within 2 s, the scheduler ticks and no cycle is stuck, and the write buffer is below ' +
  '80% of POLL_BUFFER_MAX_RESULTS with no results dropped lately. 503 with the same body, the failing checks under ' +
  '`error`, when not (or while shutting down).';

/**
 * Probes, open without the API key. /health/live: the process answers (restart it when this fails).
 * /health/ready: it can do its work (send it traffic, count it healthy). /health is readiness, as it always was.
 */
@ApiTags('operations')
@Controller('health')
export class HealthController implements OnModuleDestroy {
  private readonly logger = new Logger(HealthController.name);
  /** The last readiness verdict, to log changes once rather than every probe. */
  private wasReady: boolean | null = null;
  /** Set at the first step of a stop (SIGTERM): from then on both probes answer 503 `shutting_down`. */
  private stopping = false;

  constructor(
    private readonly checks: HealthCheckService,
    private readonly indicators: HealthIndicators,
  ) {}

  @Get('live')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({ summary: 'Liveness: the process answers and its event loop is not stuck' })
  @ApiOkResponse({ type: LivenessDto, description: 'Alive' })
  @ApiServiceUnavailableResponse({
    type: LivenessDto,
    description: 'The event loop is blocked most of the time, or shutting down',
  })
  live(@Res({ passthrough: true }) response: Response): Promise<HealthCheckResult> {
    return this.answer(response, [() => this.indicators.process()]);
  }

  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({
    summary: 'Readiness: database reachable, scheduler alive, write buffer not overflowing',
    description: READY_DESCRIPTION,
  })
  @ApiOkResponse({ type: ReadinessDto, description: 'Ready' })
  @ApiServiceUnavailableResponse({ type: ReadinessDto, description: 'Not ready: see `error`' })
  ready(@Res({ passthrough: true }) response: Response): Promise<HealthCheckResult> {
    return this.readiness(response);
  }

  @Get()
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({ summary: 'Readiness (the same as /health/ready)', description: READY_DESCRIPTION })
  @ApiOkResponse({ type: ReadinessDto, description: 'Ready' })
  @ApiServiceUnavailableResponse({ type: ReadinessDto, description: 'Not ready: see `error`' })
  health(@Res({ passthrough: true }) response: Response): Promise<HealthCheckResult> {
    return this.readiness(response);
  }

  /**
   * The first shutdown hook. Terminus answers shutting_down only from its own later hook, which can come after the
   * polls in flight have drained (seconds during which the instance would still look ready).
   */
  onModuleDestroy(): void {
    this.stopping = true;
  }

  private async readiness(response: Response): Promise<HealthCheckResult> {
    const result = await this.answer(response, [
      () => this.indicators.database(),
      () => this.indicators.scheduler(),
      () => this.indicators.buffer(),
    ]);
    const ready = result.status === 'ok';
    if (ready !== this.wasReady && (this.wasReady !== null || !ready)) {
      if (ready) this.logger.log('ready again');
      else this.logger.warn({ not_ready: Object.keys(result.error ?? {}) }, `not ready (${describeDown(result)})`);
    }
    this.wasReady = ready;
    return result;
  }

  /** Terminus throws its 503 as an exception; the probe answers its body as it is, not the API's error shape. */
  private async answer(response: Response, indicators: HealthIndicatorFunction[]): Promise<HealthCheckResult> {
    let result: HealthCheckResult;
    try {
      result = await this.checks.check(indicators);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      result = error.getResponse() as HealthCheckResult;
    }
    if (this.stopping) result = { ...result, status: 'shutting_down' };
    if (result.status !== 'ok') response.status(HttpStatus.SERVICE_UNAVAILABLE);
    return result;
  }
}

function describeDown(result: HealthCheckResult): string {
  if (result.status === 'shutting_down') return 'shutting down';
  return Object.entries(result.error ?? {})
    .map(([key, value]) => `${key}: ${String((value as { message?: unknown }).message ?? 'down')}`)
    .join('; ');
}
