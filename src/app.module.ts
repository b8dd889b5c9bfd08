import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from './config/app-config';
import { buildDataSourceOptions, runMigrations } from './database/database.options';
import { DiscoveryModule } from './discovery/discovery.module';
import { HealthController } from './health/health.controller';
import { MetersModule } from './meters/meters.module';
import { MetricsModule } from './metrics/metrics.module';
import { PollingModule } from './polling/polling.module';
import { ReadingsModule } from './readings/readings.module';

export interface AppModuleOptions {
  config: AppConfig;
  /** The server to use: DATABASE_URL, or the embedded one main.ts started. */
  databaseUrl: string;
}

@Module({})
export class AppModule {
  static register({ config, databaseUrl }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => config] }),
        ScheduleModule.forRoot(),
        TypeOrmModule.forRootAsync({
          useFactory: () => buildDataSourceOptions(databaseUrl),
          // The app's own start applies pending migrations (under a lock shared by every instance).
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            await runMigrations(dataSource);
            return dataSource;
          },
        }),
        MetricsModule,
        MetersModule,
        ReadingsModule,
        PollingModule,
        DiscoveryModule,
      ],
      controllers: [HealthController],
    };
  }
}
