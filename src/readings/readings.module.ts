import { Module } from '@nestjs/common';
import { MetersModule } from '../meters/meters.module';
import { ReadingsController } from './readings.controller';
import { ReadingsRepository } from './readings.repository';
import { ReadingsService } from './readings.service';
import { RollupRefresher } from './rollup-refresher';
import { ReadingsPartitions } from './readings-partitions';
import { StatsService } from './stats.service';

@Module({
  imports: [MetersModule],
  controllers: [ReadingsController],
  providers: [ReadingsRepository, StatsService, ReadingsService, RollupRefresher, ReadingsPartitions],
  exports: [ReadingsRepository, StatsService, RollupRefresher, ReadingsPartitions],
})
export class ReadingsModule {}
