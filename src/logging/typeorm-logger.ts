import { Logger as NestLogger } from '@nestjs/common';
import type { Logger } from 'typeorm';

/**
 * TypeORM's own messages (a pool that lost a connection, migrations run) as the app's log lines: through Nest's
 * Logger, so JSON like the rest rather than console text. What `logging: ['warn', 'migration']` asked of
 * TypeORM's console logger, no more: queries and their parameters (meter data) are never logged, and failed
 * queries are the error filter's to report.
 */
export class TypeOrmLogger implements Logger {
  private readonly logger = new NestLogger('TypeORM');

  logQuery(): void {}

  logQueryError(): void {}

  logQuerySlow(): void {}

  logSchemaBuild(): void {}

  logMigration(message: string): void {
    this.logger.log(message);
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.logger.warn(String(message));
  }
}
