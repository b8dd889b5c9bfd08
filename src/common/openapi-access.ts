import type { OpenAPIObject } from '@nestjs/swagger';
import { challenge, LIVE_READ_PATH, routeAccess } from './access-control';
import { errorResponse } from './api-errors';

export const API_KEY_SCHEME = 'api-key';
export const BEARER_SCHEME = 'bearer';

const TOO_MANY_MESSAGE = 'too many live reads of meter "345631237": at most 12 every 60 s; retry in 42 s';
const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'] as const;

/**
 * Writes the access rules into the document from the same classification the guard uses (routeAccess), so the
 * two cannot drift: protected operations list the key schemes, read-only ones list them as optional (needed only
 * when API_READ_OPEN is false), /health and /metrics list none; 401 and 429 are documented where they can occur.
 */
export function documentAccess(document: OpenAPIObject): OpenAPIObject {
  const keyed: Record<string, string[]>[] = [{ [API_KEY_SCHEME]: [] }, { [BEARER_SCHEME]: [] }];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const access = routeAccess(method, path);
      if (access === 'open') {
        operation.security = [];
        continue;
      }
      // {} in the list: the operation may also be called without a key (API_KEY unset, or API_READ_OPEN=true).
      operation.security = access === 'read' ? [...keyed, {}] : keyed;
      operation.responses['401'] ??= {
        ...errorResponse(401, {
          description:
            access === 'read'
              ? 'API_KEY is set, API_READ_OPEN is false, and the request carries no valid key'
              : 'API_KEY is set and the request carries no valid key (X-API-Key or Authorization: Bearer)',
          message: challenge('missing').message,
        }),
        headers: { 'WWW-Authenticate': { description: 'The Bearer challenge (RFC 6750)', schema: { type: 'string' } } },
      };
      if (path === LIVE_READ_PATH) {
        operation.responses['429'] ??= {
          ...errorResponse(429, {
            description:
              'Too many live reads of this meter or from this client (LIVE_READ_LIMIT_*); Retry-After gives the ' +
              'seconds to wait. Reads with start_date/end_date are statistics and are not limited.',
            message: TOO_MANY_MESSAGE,
          }),
          headers: { 'Retry-After': { description: 'Seconds until a read is admitted again', schema: { type: 'integer' } } },
        };
      }
    }
  }
  return document;
}
