import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';
import { DatabaseUnavailableError, DomainError } from './errors';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string | string[];
}

/**
 * The one error shape of the API: `{statusCode, error, message}`. Domain errors map to their status; Nest's
 * HTTP exceptions keep theirs; anything else is logged and answered as a bare 500 with no internals.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger(AllExceptionsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof DomainError) {
      return errorBody(exception.status, exception.message);
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      const message =
        typeof payload === 'object' && payload !== null && 'message' in payload
          ? (payload as { message: string | string[] }).message
          : exception.message;
      return errorBody(status, message);
    }
    const bodyParserStatus = bodyParserErrorStatus(exception);
    if (bodyParserStatus !== null) {
      return errorBody(bodyParserStatus, bodyParserMessage(bodyParserStatus));
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn(`database unavailable: ${String((exception as { message?: unknown }).message)}`);
      const unavailable = new DatabaseUnavailableError();
      return errorBody(unavailable.status, unavailable.message);
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    return errorBody(HttpStatus.INTERNAL_SERVER_ERROR, 'internal error');
  }
}

export function errorBody(statusCode: number, message: string | string[]): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** body-parser errors carry a 4xx `status` (bad JSON, too large, bad charset): they are the client's. */
function bodyParserErrorStatus(exception: unknown): number | null {
  if (typeof exception !== 'object' || exception === null) return null;
  const { status, type } = exception as { status?: unknown; type?: unknown };
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string') return status;
  return null;
}

function bodyParserMessage(status: number): string {
  if (status === 413) return 'request body is too large';
  if (status === 415) return 'unsupported content encoding or charset';
  return 'request body is not valid JSON';
}

/** SQLSTATE classes 08 (connection) and 57P (server shutting down), and the pg pool's own connection failures. */
/**
 * Errors of reaching the database, not of the request: Node's socket errors, and PostgreSQL refusing connections
 * (class 08 below, 53 insufficient resources such as too many clients, 57P01-57P03 shutting down or starting, 55000
 * "database is not currently accepting connections", 3D000 no such database, 28000/28P01 authentication: a
 * break test got a 500 for a database closed to connections).
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '55000',
  '3D000',
  '28000',
  '28P01',
]);

/** An error that says the database could not be reached, not that the request was wrong: answered 503. */
export function isDatabaseUnavailable(exception: unknown): boolean {
  let current: unknown = exception;
  // Duck-typed, not instanceof Error: errors from Node's own modules may come from another realm (as under Jest).
  for (let depth = 0; depth < 3 && typeof current === 'object' && current !== null; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08') || code.startsWith('53'))) {
      return true;
    }
    if (
      typeof message === 'string' &&
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(message)
    ) {
      return true;
    }
    current = (current as { driverError?: unknown; cause?: unknown }).driverError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}
