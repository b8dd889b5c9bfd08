import { Module } from '@nestjs/common';
import { MetersModule } from '../meters/meters.module';
import { ReadingsModule } from '../readings/readings.module';
import { LiveDataController } from './live-data.controller';
import { MeterClient } from './meter-client';
import { PollingService } from './polling.service';
import { ReadingWriter } from './reading-writer';

@Module({
  imports: [MetersModule, ReadingsModule],
  controllers: [LiveDataController],
  providers: [MeterClient, PollingService, ReadingWriter],
  exports: [PollingService, ReadingWriter, MeterClient],
})
export class PollingModule {}
