import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { AddressPolicy } from '../common/network';
import { Meter } from './meter.entity';
import { MetersController } from './meters.controller';
import { MetersRepository } from './meters.repository';
import { MetersService } from './meters.service';

@Module({
  imports: [TypeOrmModule.forFeature([Meter])],
  controllers: [MetersController],
  providers: [
    MetersRepository,
    MetersService,
    {
      provide: AddressPolicy,
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) =>
        new AddressPolicy(config.get('meters', { infer: true }).allowedNetworks),
    },
  ],
  exports: [MetersRepository, MetersService, AddressPolicy],
})
export class MetersModule {}
