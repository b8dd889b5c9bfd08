import { NestExpressApplication } from '@nestjs/platform-express';
import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { configureApp } from '../../src/bootstrap';
import { AppModule } from '../../src/app.module';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { PollingService } from '../../src/polling/polling.service';
import { ReadingWriter } from '../../src/polling/reading-writer';
import { Test } from '@nestjs/testing';
import { createTestDatabase } from '../setup/test-database';

export interface TestApp {
  app: NestExpressApplication;
  http: () => ReturnType<typeof request>;
  dataSource: DataSource;
  polling: PollingService;
  writer: ReadingWriter;
  config: AppConfig;
  databaseUrl: string;
  /** Lets every meter be polled again now (tests drive cycles without waiting an interval). */
  releaseClaims(): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /**
   * Run on this database (another TestApp's `databaseUrl`) instead of a fresh one: a second instance sharing the
   * first's database. Its close() leaves the database alone; the app that created it drops it.
   */
  databaseUrl?: string;
}

/**
 * The real application (same module, pipes, filters and Swagger as main.ts) on a fresh database of its own,
 * migrated by the app's own start. Polling is off unless the test turns it on: tests call runCycle() directly.
 */
export async function createTestApp(
  label: string,
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => undefined }
    : await createTestDatabase(label);
  const config = loadConfig({
    POLLING_ENABLED: 'false',
    POLL_TIMEOUT_MS: '1000',
    POLL_SCHEDULE: 'burst',
    // Quiet tests: only errors reach the output unless a test asks for more.
    LOG_LEVEL: 'error',
    ...env,
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register({ config, databaseUrl: database.url })],
  }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ bodyParser: false, logger: ['error'] });
  configureApp(app, config);
  await app.init();
  const server = app.getHttpServer();
  const dataSource = app.get<DataSource>(getDataSourceToken());
  return {
    app,
    http: () => request(server),
    dataSource,
    polling: app.get(PollingService),
    writer: app.get(ReadingWriter),
    config,
    databaseUrl: database.url,
    releaseClaims: async () => {
      await dataSource.query('UPDATE meters SET poll_claimed_until = NULL');
    },
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}
