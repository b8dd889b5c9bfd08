import { Module } from '@nestjs/common';
import { MetersModule } from '../meters/meters.module';
import { PollingModule } from '../polling/polling.module';
import { DiscoveryController } from './discovery.controller';
import { DiscoveryService } from './discovery.service';

@Module({
  imports: [MetersModule, PollingModule],
  controllers: [DiscoveryController],
  providers: [DiscoveryService],
})
export class DiscoveryModule {}
