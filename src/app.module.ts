import { DynamicModule, Module, Provider } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AccessControl } from './common/access-control';
import { AccessGuard } from './common/access.guard';
import { liveReadThrottlerOptions, LiveReadThrottlerGuard } from './common/live-read-throttler.guard';
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
    const throttling = liveReadThrottlerOptions(config.liveReadLimits);
    // Guards run in this order: a request without the key is refused before it counts against a rate limit.
    const guards: Provider[] = [
      { provide: AccessControl, useValue: new AccessControl(config.access) },
      { provide: APP_GUARD, useClass: AccessGuard },
    ];
    if (!Array.isArray(throttling) && throttling.throttlers.length > 0) {
      guards.push({ provide: APP_GUARD, useClass: LiveReadThrottlerGuard });
    }
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => config] }),
        ScheduleModule.forRoot(),
        ThrottlerModule.forRoot(throttling),
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
      providers: guards,
    };
  }
}
