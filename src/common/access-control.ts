import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Request } from 'express';
import { AppConfig } from '../config/app-config';
// The controller's own rule for "this /data request asks for statistics": a live read is /data without it.
import { isStatsRequest, periodRequest } from '../readings/readings.controller';

/**
 * What a route is, for access control:
 * - `open`: /health (and /live, /ready) and /metrics, always served (probes and scrapers carry no key);
 * - `read`: read-only, served without the key when API_READ_OPEN=true;
 * - `live-read`: GET /meters/{id}/data without dates, which makes the service read the meter now;
 * - `change`: every method that changes state (POST, PATCH, PUT, DELETE), whatever the path.
 */
export type RouteAccess = 'open' | 'read' | 'live-read' | 'change';

const OPEN_PATHS = new Set(['/health', '/health/live', '/health/ready', '/metrics']);
export const LIVE_READ_PATH = '/meters/{meterId}/data';

/** Classifies a route by method and OpenAPI-style path (`/meters/{meterId}`); the guard and the docs both ask here. */
export function routeAccess(method: string, path: string, withPeriod = false): RouteAccess {
  const verb = method.toUpperCase();
  if (verb !== 'GET' && verb !== 'HEAD' && verb !== 'OPTIONS') return 'change';
  if (OPEN_PATHS.has(path)) return 'open';
  if (path === LIVE_READ_PATH && !withPeriod) return 'live-read';
  return 'read';
}

/** The access class of the request Express routed (`req.route` is set once a route matched). */
export function requestAccess(req: Request): RouteAccess {
  const routePath = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof routePath !== 'string') return routeAccess(req.method, '');
  const path = routePath.replace(/:(\w+)/g, '{$1}').replace(/(.)\/$/, '$1');
  const period = periodRequest(
    (req.query ?? {}) as Record<string, unknown>,
    typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : undefined,
  );
  return routeAccess(req.method, path, isStatsRequest(period));
}

export type KeyVerdict = 'ok' | 'missing' | 'invalid';

/** Answers 401 challenges carry (RFC 6750); the key may also come as X-API-Key. */
export const REALM = 'electric-meter';

/**
 * Checks the API key a request carries (`X-API-Key: <key>` or `Authorization: Bearer <key>`). Keys are compared
 * as SHA-256 digests with timingSafeEqual: equal lengths whatever was sent, and no early exit on the first
 * differing byte. Neither the key nor what a client sent is ever logged or echoed.
 */
export class AccessControl {
  private readonly keyDigest: Buffer | null;
  readonly readOpen: boolean;

  constructor(settings: AppConfig['access']) {
    this.keyDigest = settings.apiKey === null ? null : digest(settings.apiKey);
    this.readOpen = settings.readOpen;
  }

  get enabled(): boolean {
    return this.keyDigest !== null;
  }

  /** Whether a route of this class needs the key under the current settings. */
  needsKey(access: RouteAccess): boolean {
    if (this.keyDigest === null || access === 'open') return false;
    return access !== 'read' || !this.readOpen;
  }

  /** Every credential given must be the key, and at least one must be given. */
  verify(headers: IncomingHttpHeaders): KeyVerdict {
    if (this.keyDigest === null) return 'ok';
    const presented = presentedKeys(headers);
    if (presented.length === 0) return 'missing';
    // Every candidate is compared (no short-circuit) so the time does not tell which one failed.
    let ok = true;
    for (const candidate of presented) ok = timingSafeEqual(digest(candidate), this.keyDigest) && ok;
    return ok ? 'ok' : 'invalid';
  }
}

/** The WWW-Authenticate challenge and the message of a 401 for a verdict. */
export function challenge(verdict: Exclude<KeyVerdict, 'ok'>): { header: string; message: string } {
  return verdict === 'missing'
    ? {
        header: `Bearer realm="${REALM}"`,
        message: 'this request needs the API key: send it as X-API-Key: <key> or Authorization: Bearer <key>',
      }
    : {
        header: `Bearer realm="${REALM}", error="invalid_token"`,
        message: 'the API key sent is not valid',
      };
}

function presentedKeys(headers: IncomingHttpHeaders): string[] {
  const keys: string[] = [];
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') keys.push(apiKey.trim());
  const authorization = headers.authorization;
  // Another scheme (Basic, ...) is not addressed to this service and is left alone; a malformed Bearer is not.
  if (typeof authorization === 'string' && /^Bearer(\s|$)/i.test(authorization)) {
    keys.push(authorization.slice('Bearer'.length).trim());
  }
  return keys;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
