import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PollingModule } from '../polling/polling.module';
import { HealthController } from './health.controller';
import { HealthIndicators } from './health.indicators';

@Module({
  // Terminus' own log line on every failed probe is off: the controller logs when readiness changes.
  imports: [TerminusModule.forRoot({ logger: false }), PollingModule],
  controllers: [HealthController],
  providers: [HealthIndicators],
})
export class HealthModule {}
