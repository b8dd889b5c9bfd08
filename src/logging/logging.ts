import { DynamicModule, LoggerService } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger as PinoNestLogger, LoggerModule, Params, PinoLogger } from 'nestjs-pino';
import { Store, storage } from 'nestjs-pino/storage';
import pino, { DestinationStream, Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { LogLevel } from '../config/app-config';

/**
 * JSON logs: one pino logger per process writes every line to stdout (Nest's own lines, the services' Logger
 * calls, one line per HTTP request). Lines logged while a request is handled carry its `reqId`.
 */

export const REQUEST_ID_HEADER = 'x-request-id';
/** An incoming X-Request-Id is kept when it looks like an id (a proxy's UUID or trace id), else one is made. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Headers that carry secrets. Request lines list none of the headers (see `serializeRequest`); the redaction is
 * for any other line that logs a request or its headers.
 */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

/** Probes and scrapers ask every few seconds: their answers are logged at debug, not info. */
const QUIET_PATHS = /^\/(health(\/(live|ready))?|metrics)\/?$/;

/**
 * The process's root logger: JSON lines to `destination`, by default process.stdout (synchronous for files and
 * pipes on Linux, so nothing is lost at exit; and what a test hooks on process.stdout sees every line).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination ?? process.stdout,
  );
}

/**
 * Nest's LoggerService over `logger`, for lines logged before the application exists (the embedded database's
 * start) and for `app.useLogger`. nestjs-pino keeps one logger for lines outside a request per process: the first
 * one built wins, which is this process's root logger.
 */
export function nestLogger(logger: Logger): LoggerService {
  const params = loggerParams(logger);
  return new PinoNestLogger(new PinoLogger(params), params);
}

/**
 * nestjs-pino's module: Nest's Logger and PinoLogger write through `logger`. Its own middleware is not used (no
 * routes): `requestLogger` is, installed by configureApp before every other middleware, so that requests refused
 * before routing are logged with their id too.
 */
export function loggerModule(logger: Logger): DynamicModule {
  return LoggerModule.forRoot({ ...loggerParams(logger), forRoutes: [] });
}

function loggerParams(logger: Logger): Params {
  return { pinoHttp: { logger }, useExisting: true };
}

/**
 * One line per HTTP request when its answer is sent: method, path, status, time; the request id (an incoming
 * X-Request-Id when sane, else a new UUID) goes back in the X-Request-Id header. No headers, no bodies.
 */
export function requestLogger(logger: Logger): RequestHandler[] {
  const http = pinoHttp({
    logger,
    quietReqLogger: true,
    genReqId: requestId,
    serializers: { req: serializeRequest, res: serializeResponse },
    customLogLevel: (req, res) => {
      // The probes' answers are routine either way: readiness logs its own changes (HealthController).
      if (QUIET_PATHS.test(pathOf(req))) return 'debug';
      // A 500 is a bug (the error filter logs its stack); 502/503/504 are a meter or the database away.
      if (res.statusCode === 500) return 'error';
      return res.statusCode > 500 ? 'warn' : 'info';
    },
    customSuccessMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
    // pino-http makes up an error ("failed with status code 503") with its own stack for every 5xx: noise.
    customErrorObject: (_req, _res, _error, loggable: Record<string, unknown>) => {
      const { err: _made, ...rest } = loggable;
      return rest;
    },
  });
  // What nestjs-pino's middleware does after pino-http: Logger calls made while the request is handled write
  // through its logger (the one that adds reqId).
  const bind = (req: Request, _res: Response, next: NextFunction) => storage.run(new Store(req.log), next);
  return [http, bind];
}

/** The request's id: a sane incoming X-Request-Id, else a new UUID; echoed in the answer. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  const id = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/** The request as logged: no headers (API keys travel in them), the query kept (it names meters and dates). */
function serializeRequest(req: { id?: unknown; method?: string; url?: string; remoteAddress?: string }) {
  return { id: req.id, method: req.method, url: req.url, remoteAddress: req.remoteAddress };
}

function serializeResponse(res: { statusCode?: number }) {
  return { statusCode: res.statusCode };
}

function pathOf(req: IncomingMessage): string {
  const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
