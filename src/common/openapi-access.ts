import type { OpenAPIObject } from '@nestjs/swagger';
import { LIVE_READ_PATH, routeAccess } from './access-control';

export const API_KEY_SCHEME = 'api-key';
export const BEARER_SCHEME = 'bearer';

const ERROR_SCHEMA = { $ref: '#/components/schemas/ErrorResponseDto' };
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
        description:
          access === 'read'
            ? 'API_KEY is set, API_READ_OPEN is false, and the request carries no valid key'
            : 'API_KEY is set and the request carries no valid key (X-API-Key or Authorization: Bearer)',
        content: { 'application/json': { schema: ERROR_SCHEMA } },
      };
      if (path === LIVE_READ_PATH) {
        operation.responses['429'] ??= {
          description:
            'Too many live reads of this meter or from this client (LIVE_READ_LIMIT_*); Retry-After gives the ' +
            'seconds to wait. Reads with start_date/end_date are statistics and are not limited.',
          headers: { 'Retry-After': { description: 'Seconds until a read is admitted again', schema: { type: 'integer' } } },
          content: { 'application/json': { schema: ERROR_SCHEMA } },
        };
      }
    }
  }
  return document;
}
