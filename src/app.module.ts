import { DynamicModule, Module, Provider } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Logger as PinoLogger } from 'pino';
import { DataSource } from 'typeorm';
import { AccessControl } from './common/access-control';
import { AccessGuard } from './common/access.guard';
import { liveReadThrottlerOptions, LiveReadThrottlerGuard } from './common/live-read-throttler.guard';
import { AppConfig } from './config/app-config';
import { buildDataSourceOptions, runMigrations } from './database/database.options';
import { DiscoveryModule } from './discovery/discovery.module';
import { HealthModule } from './health/health.module';
import { createLogger, loggerModule } from './logging/logging';
import { MetersModule } from './meters/meters.module';
import { MetricsModule } from './metrics/metrics.module';
import { PollingModule } from './polling/polling.module';
import { ReadingsModule } from './readings/readings.module';

export interface AppModuleOptions {
  config: AppConfig;
  /** The server to use: DATABASE_URL, or the embedded one main.ts started. */
  databaseUrl: string;
  /** The process's root logger (main.ts made it before the app); made from LOG_LEVEL when not given. */
  logger?: PinoLogger;
}

/** The root pino logger, for configureApp's request logging. */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

@Module({})
export class AppModule {
  static register({ config, databaseUrl, logger = createLogger(config.logging.level) }: AppModuleOptions): DynamicModule {
    const throttling = liveReadThrottlerOptions(config.liveReadLimits);
    // Guards run in this order: a request without the key is refused before it counts against a rate limit.
    const guards: Provider[] = [
      { provide: ROOT_LOGGER, useValue: logger },
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
        loggerModule(logger),
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
        HealthModule,
      ],
      providers: guards,
    };
  }
}
