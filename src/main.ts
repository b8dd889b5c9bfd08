import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import { existsSync } from 'node:fs';
import { bootstrapLogger, createApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';
import { openDatabaseServer } from './database/database-server';
import { SHUTDOWN_FLUSH_BUDGET_MS } from './polling/polling.service';
import { ReadingWriter } from './polling/reading-writer';
import { createLogger, nestLogger } from './logging/logging';

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfig(process.env);
  // JSON lines from here on, the embedded database's start included.
  const logger = createLogger(config.logging.level);
  Logger.overrideLogger(nestLogger(logger));
  const database = await openDatabaseServer(config.database);
  let app: Awaited<ReturnType<typeof createApp>>;
  try {
    app = await createApp(config, database.url, logger);
    await app.listen(config.app.port);
  } catch (error) {
    await database.close();
    throw error;
  }
  bootstrapLogger.log(`Electric Meter listening on http://localhost:${config.app.port} (Swagger UI at /docs)`);

  const HTTP_DRAIN_MS = 2000;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    bootstrapLogger.log(`${signal}: stopping (no new polls, flushing readings)`);
    // A hung shutdown must not outlive its deadline: DevOps wait for the process to go. Polls get the grace
    // period, the last write its retry budget, closing the pool and the embedded database the rest.
    const writer = app.get(ReadingWriter);
    // The exit code keeps its meaning (1: readings were given up) when the deadline cuts the stop short: a database
    // that hangs after the last write holds the pool's close, and nothing is lost by leaving then.
    const deadline = setTimeout(() => {
      const lost = writer.unwritten().readings;
      if (lost > 0) {
        bootstrapLogger.error(`shutdown deadline passed: exiting with code 1, ${lost} readings could not be written`);
      } else {
        bootstrapLogger.warn('shutdown deadline passed while closing (the database does not answer); every reading was written');
      }
      process.exit(lost > 0 ? 1 : 0);
    }, config.polling.shutdownGraceMs + SHUTDOWN_FLUSH_BUDGET_MS + 10_000);
    deadline.unref();
    // Requests in progress get a moment to finish; a client that holds its connection open (idle keep-alive, or a
    // body sent a byte at a time) must not hold the shutdown: its connection is closed.
    const server = app.getHttpServer() as Server;
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), HTTP_DRAIN_MS).unref();
    try {
      await app.close();
      await database.close();
      // Exit 0 only when every reading taken is stored: readings left unwritten (database unreachable at the
      // end) are lost, and an exit code of 1 lets the supervisor and the operator see it.
      const lost = writer.unwritten().readings;
      if (lost > 0) bootstrapLogger.error(`exiting with code 1: ${lost} readings could not be written`);
      process.exit(lost > 0 ? 1 : 0);
    } catch (error) {
      bootstrapLogger.error(`shutdown failed: ${String(error)}`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    bootstrapLogger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  process.exit(1);
});
