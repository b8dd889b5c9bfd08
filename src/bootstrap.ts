import { INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { Logger as PinoLogger } from 'pino';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppModule, ROOT_LOGGER } from './app.module';
import { AccessControl, challenge, routeAccess } from './common/access-control';
import { AllExceptionsFilter, errorBody } from './common/http-exception.filter';
import { ApiValidationPipe } from './common/validation-pipe';
import { documentCommonResponses } from './common/openapi-document';
import { API_KEY_SCHEME, BEARER_SCHEME, documentAccess } from './common/openapi-access';
import { AppConfig } from './config/app-config';
import { dashboard } from './dashboard/dashboard';
import { createLogger, nestLogger, requestLogger } from './logging/logging';

/**
 * Builds the application exactly as it serves: used by main.ts and by the e2e tests, so that both see the same
 * pipes, error shape, body limits and Swagger document.
 */
export async function createApp(
  config: AppConfig,
  databaseUrl: string,
  logger: PinoLogger = createLogger(config.logging.level),
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register({ config, databaseUrl, logger }), {
    bodyParser: false,
    logger: nestLogger(logger),
  });
  configureApp(app, config);
  return app;
}

export function configureApp(app: INestApplication, config: AppConfig): void {
  const express_ = app as NestExpressApplication;
  // Every Logger call of the app is a pino JSON line; a request's lines carry its id. Built from the root logger
  // (a value provider), not taken from the container: in Nest's preview mode (tools/openapi-document.ts) providers
  // are not constructed, and an unconstructed nestjs-pino Logger installed as Nest's logger broke every later
  // Logger call in the process (a 500 from the next app's first warning).
  const root = app.get<PinoLogger>(ROOT_LOGGER);
  app.useLogger(nestLogger(root));
  express_.disable('x-powered-by');
  // First of all middleware: a request refused by any of those below is logged with its id as well.
  express_.use(...requestLogger(root));
  answerMalformedRequests(app.getHttpServer() as Server);
  express_.use(helmet(HELMET_OPTIONS));
  // Writes need the key whatever the route: refuse them before their body is read, so a client without the key
  // cannot make the service parse a 32 MiB bulk body. The guard (AccessGuard) decides for every route after this.
  const access = app.get(AccessControl);
  if (access.enabled) {
    express_.use((req: Request, res: Response, next: NextFunction) => {
      // Only a change is known before routing (the method alone says it); the guard decides the rest.
      if (routeAccess(req.method, req.path) !== 'change') return next();
      const verdict = access.verify(req.headers);
      if (verdict === 'ok') return next();
      const { header, message } = challenge(verdict);
      res.setHeader('WWW-Authenticate', header);
      res.status(401).json(errorBody(401, message));
    });
  }
  // The dashboard's static files (GET and HEAD, always open: they hold no data, the page asks for the key when
  // the API wants one); any other path falls through to the API's routes and its JSON 404.
  express_.use(dashboard());
  // Bodies are JSON (or nothing). Parse errors are answered here with the API's error shape: they happen before
  // any route, where Nest's filters cannot see them.
  // Bulk registration carries tens of thousands of rows, as JSON or CSV: a larger limit for that route only.
  express_.use(
    '/meters/bulk',
    express.json({ limit: config.app.bulkBodyLimitBytes, strict: true, type: ['application/json', '+json'] }),
    express.text({ limit: config.app.bulkBodyLimitBytes, type: ['text/csv', 'text/plain'] }),
  );
  express_.use(express.json({ limit: config.app.bodyLimitBytes, strict: true, type: ['application/json', '+json'] }));
  express_.use((error: { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (!error) return next();
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 400;
    const message =
      status === 413
        ? 'request body is too large'
        : status === 415
          ? 'unsupported content encoding or charset'
          : 'request body is not valid JSON';
    res.status(status).json(errorBody(status, message));
  });
  // A body no parser above took (a form, text on a JSON route) would reach the DTOs as no body at all, and be
  // answered with every field missing: its type is what is wrong.
  express_.use((req: Request, res: Response, next: NextFunction) => {
    if (req.body !== undefined || !hasBody(req)) return next();
    const accepted = req.path.replace(/\/+$/, '') === '/meters/bulk' ? 'JSON (application/json) or CSV (text/csv)' : 'JSON (application/json)';
    res.status(415).json(errorBody(415, `request body must be ${accepted}`));
  });
  // Bodies class-transformer cannot take, refused before it sees them (each was a 500, found by test/fuzz), and
  // query parameters named after Object.prototype's members.
  express_.use((req: Request, res: Response, next: NextFunction) => {
    const problem = reservedQueryParameter(req.query) ?? jsonShapeProblem(req.body);
    if (problem === null) return next();
    res.status(400).json(errorBody(400, problem));
  });
  app.useGlobalPipes(new ApiValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Electric Meter')
      .setDescription(
        'Reads electricity meters on a local network over HTTP, keeps every reading in PostgreSQL, and answers ' +
          'how much energy a meter used in a period. Energy figures are kWh, current figures amperes, every ' +
          'number a JSON number. Errors are `{statusCode, error, message}`.\n\n' +
          'Access: when the service runs with `API_KEY` set, every request that changes state (POST, PATCH, ' +
          'DELETE) or reads a meter live (`GET /meters/{meterId}/data` without dates) needs the key, as ' +
          '`X-API-Key: <key>` or `Authorization: Bearer <key>` (401 otherwise); read-only endpoints need it too ' +
          'unless `API_READ_OPEN=true`; `/health` and `/metrics` never do. Live reads are rate-limited per meter ' +
          'and per client (429 with Retry-After).',
      )
      .setVersion('0.1.0')
      // Relative: the API is where the document is served, whatever host and port that is.
      .addServer('/', 'This service')
      .addApiKey(
        { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The API_KEY the service runs with' },
        API_KEY_SCHEME,
      )
      .addBearerAuth(
        { type: 'http', scheme: 'bearer', description: 'The API_KEY the service runs with, as a bearer token' },
        BEARER_SCHEME,
      )
      .build(),
  );
  documentAccess(document);
  documentCommonResponses(document);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

/**
 * Security headers on every answer. The CSP is strict but lets Swagger UI at /docs work: its scripts and
 * stylesheet are files from this origin, its page has inline <style> blocks and data: images (the icons), and
 * "Try it out" calls this origin. No upgrade-insecure-requests: the service is usually reached over plain HTTP on
 * a local network, where that directive would send /docs's own assets to an https:// that is not there.
 */
const HELMET_OPTIONS: Parameters<typeof helmet>[0] = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      scriptSrcAttr: ["'none'"],
    },
  },
};

/**
 * Requests Node's HTTP parser refuses (a request line or headers over 16 KiB, bytes that are not HTTP) never
 * reach Express; Node would answer them with a bare status line. Answer them in the API's error shape too.
 */
function answerMalformedRequests(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const inResponse = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (error.code === 'ECONNRESET' || !socket.writable || inResponse) {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message =
      status === 431 ? 'request line or headers are too large' : status === 408 ? 'request timed out' : 'malformed HTTP request';
    const body = JSON.stringify(errorBody(status, message));
    socket.end(
      `HTTP/1.1 ${status} ${errorBody(status, message).error}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

const MAX_JSON_DEPTH = 32;
/**
 * Names no request may use as a property (body) or parameter (query): Object.prototype's own (constructor,
 * __proto__, hasOwnProperty, ...) and "prototype". class-transformer takes a nested "constructor" for a class and
 * throws; class-validator's whitelist looks a key up in a plain object, so a key named after a prototype method
 * ("hasOwnProperty", "isPrototypeOf") passed forbidNonWhitelisted unnoticed (test/fuzz found a 202 for one).
 */
const RESERVED_KEYS = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

/**
 * Why a parsed JSON body cannot be taken, or null. class-transformer (the ValidationPipe, bulk row checks) recurses
 * into every nested value, so a few thousand nested arrays (8 KiB) overflowed the stack; and it takes a nested
 * object's own "constructor" key for its class, and throws. No request of this API nests deeper than a few
 * levels or names such a key. Checked iteratively, in one pass over the value.
 */
export function jsonShapeProblem(body: unknown): string | null {
  const stack: [unknown, number][] = [[body, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) return `request body is nested too deeply (at most ${MAX_JSON_DEPTH} levels)`;
    const isArray = Array.isArray(value);
    for (const key of Object.keys(value)) {
      if (!isArray && RESERVED_KEYS.has(key)) return `request body must not use "${key}" as a property name`;
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return null;
}

/** Whether the request carries a body (as body-parser decides it: a length other than 0, or chunked). */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** A query parameter named like an Object.prototype member, as a message, or null. */
export function reservedQueryParameter(query: unknown): string | null {
  if (typeof query !== 'object' || query === null) return null;
  const reserved = Object.keys(query).find((key) => RESERVED_KEYS.has(key));
  return reserved === undefined ? null : `query parameter "${reserved}" is not allowed`;
}

export const bootstrapLogger = new Logger('Bootstrap');
