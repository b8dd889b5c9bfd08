import fc from 'fast-check';
import { STATUS_CODES } from 'node:http';
import { connect, isIP, type AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { insertMeter, insertReadings } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Hostile clients (issue 5, item 4): thousands of generated malformed requests across every endpoint, sent to the
 * real application over a real socket. Whatever they send: no 5xx, no stack trace or SQL text in a body, every 4xx
 * in the error shape, and nothing in the database changed by a request that was refused.
 *
 * Requests that could legitimately change something are made invalid on purpose (each body of a create, patch,
 * bulk row or discovery scan carries at least one bad field), existing meters are never deleted, and /data on an
 * existing meter always carries a date (statistics, not a live read): so every request must be refused or be a
 * read, and any change to the database is a failure.
 */

const BODY_LIMIT = 8 * 1024;
const BULK_BODY_LIMIT = 16 * 1024;
/** FUZZ_RUNS raises the count for a longer local run (never below 400 x 25 = 10,000); FUZZ_SEED replays a run. */
const RUNS = Math.max(400, Number(process.env.FUZZ_RUNS) || 0);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const REQUESTS_PER_RUN = 25;
const EXISTING = ['fz-1', 'fz-2', 'fz.3_x-y'];

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'PUT' | 'OPTIONS';

interface FuzzRequest {
  family: string;
  method: Method;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Set when the body is larger than the limit of its route and of a JSON type: 413 expected. */
  oversized?: boolean;
}

// -------------------------------------------------------------------------------------------------------------
// Building blocks

const TRICKY_TEXT = [
  '', ' ', '\t', '\n', '\r\n', '\u0000', '\u202e', '\uFEFF', '\uD800', '😀', 'Ω≈ç√', 'ﷺ', 'Z̤͔ͧ̑̓',
  '../', '..\\', '../../etc/passwd', '%00', '%', '%zz', '%ff', '%c0%ae', '%2e%2e%2f',
  "' OR '1'='1", '"; DROP TABLE meters; --', '$where', '{{7*7}}', '${7*7}', '<script>alert(1)</script>',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  'NaN', 'Infinity', '-Infinity', '-1', '1e400', '0x10', '1_000', '0', '-0', '4321', '65536', '99999999999999999999',
  'null', 'true', 'false', '{}', '[]', 'undefined',
  '127.0.0.1', '::1', '169.254.169.254', '0.0.0.0', '::', 'localhost', 'http://127.0.0.1/', '127.0.0.1:80', 'fe80::1%eth0',
  '12-08-2023', '31-02-2023', '2023-08-12', '2023-02-29', '2023-08-12T10:00:00Z', '2023-08-12T10:00:00',
  '2023-08-12T24:00:00+14:00', '2023-08-12T10:00:00.1234567891Z', '0000-01-01', '9999-12-31', '1969-12-31',
  'Europe/Berlin', 'Mars/Base', 'UTC', 'Etc/GMT+14', 'europe/berlin',
  'up', 'down', 'unknown', 'hour', 'day', 'month', 'csv',
];

const junkText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TRICKY_TEXT) },
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 51, max: 3000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((n) => 'é😀'.repeat(n)) },
);

const junkNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1.5, 65535.5, 65536, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 5e-324),
);

const junkValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    junkText,
    junkNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(junkText, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Values a port (or port_from / port_to) field must refuse. */
const badPort = fc.oneof(
  fc.constantFrom<unknown>(0, -1, 65536, 1.5, 80.5, '80', '4321', '', 'x', true, [], {}, [9000], 1e308, Number.MAX_SAFE_INTEGER),
  fc.integer({ max: 0 }),
  fc.integer({ min: 65536 }),
  fc.double({ noInteger: true }),
  junkText.filter((text) => text !== ''),
);

/** Addresses the service must refuse: not IP literals at all, or outside the admitted networks. */
const badAddress = fc.oneof(
  junkText.filter((text) => isIP(text.trim()) === 0),
  fc.constantFrom<unknown>('8.8.8.8', '169.254.169.254', '0.0.0.0', '::', 'fe80::1', '::ffff:169.254.169.254', '2001:db8::1', '255.255.255.255', 1, null, true, [], {}),
);

const badMeterId = fc.oneof(
  fc.constantFrom<unknown>('', 'a/b', 'a b', 'x'.repeat(51), 12, null, true, [], {}, '../x', '%00', 'é'),
  junkText.filter((text) => !/^[A-Za-z0-9._-]{1,50}$/.test(text)),
);

const extraKey = junkText.filter(
  (key) => !['meter_id', 'address', 'port', 'name', 'enabled', 'port_from', 'port_to', '__proto__'].includes(key),
);

const plausibleMeter = fc.record(
  {
    meter_id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,50}$/), junkValue),
    address: fc.oneof(fc.constantFrom('127.0.0.1', '::1', '10.0.0.1'), junkValue),
    port: fc.oneof(fc.integer({ min: 1, max: 65535 }), junkValue),
    name: fc.oneof(junkText, junkValue),
    enabled: fc.oneof(fc.boolean(), junkValue),
  },
  { requiredKeys: [] },
);

type Spoiler = (value: Record<string, unknown>) => fc.Arbitrary<Record<string, unknown>>;

/** Makes an object that may be a valid create/patch/row body certainly invalid (one bad field at least). */
function spoiled(base: fc.Arbitrary<Record<string, unknown>>, fields: 'meter' | 'patch' | 'discovery'): fc.Arbitrary<Record<string, unknown>> {
  const spoilers: Spoiler[] = [
    (value) => fc.tuple(extraKey, junkValue).map(([key, extra]) => ({ ...value, [key]: extra })),
    (value) => badAddress.map((address) => ({ ...value, address })),
  ];
  if (fields === 'discovery') {
    spoilers.push((value) => badPort.map((port) => ({ ...value, port_from: port })));
    spoilers.push((value) => badPort.map((port) => ({ ...value, port_to: port })));
    spoilers.push((value) =>
      fc.tuple(fc.integer({ min: 2, max: 65535 }), fc.integer({ min: 1, max: 65534 })).map(([from, gap]) => ({
        ...value,
        port_from: from,
        port_to: Math.max(1, from - gap),
      })),
    );
  } else {
    spoilers.push((value) => badPort.map((port) => ({ ...value, port })));
  }
  if (fields === 'meter') spoilers.push((value) => badMeterId.map((meter_id) => ({ ...value, meter_id })));
  return base.chain((value) => fc.oneof(...spoilers.map((spoil) => spoil(value))));
}

const createBody = spoiled(plausibleMeter, 'meter');
const patchBody = spoiled(plausibleMeter.map(({ meter_id: _, ...rest }) => rest), 'patch');
const discoveryBody = spoiled(
  fc.record(
    {
      address: fc.oneof(fc.constant('127.0.0.1'), junkValue),
      port_from: fc.oneof(fc.integer({ min: 1, max: 65535 }), junkValue),
      port_to: fc.oneof(fc.integer({ min: 1, max: 65535 }), junkValue),
      enabled: fc.oneof(fc.boolean(), junkValue),
    },
    { requiredKeys: [] },
  ),
  'discovery',
);

/** JSON text that does not parse. */
const brokenJson = fc
  .oneof(
    fc.constantFrom('{', '}', '[', '{"a":}', "{'a': 1}", '{"a": 1,}', '[1,]', 'nul', 'tru', '{"a" 1}', '{"a":1}}',
      'NaN', '-', '"unterminated', '{"a": "\\x41"}', '\uFEFF{"a":1}', '{"a":01}', '[' + '1,'.repeat(100)),
    fc.jsonValue().map((value) => JSON.stringify(value)).filter((text) => text.length > 1).map((text) => text.slice(0, -1)),
    fc.tuple(fc.jsonValue(), fc.constantFrom('}', ']', ',', 'x', ' 1')).map(([value, tail]) => JSON.stringify(value) + tail),
    fc.integer({ min: 1, max: 3000 }).map((depth) => '['.repeat(depth)),
  )
  .filter((text) => {
    try {
      JSON.parse(text);
      return false;
    } catch {
      return true;
    }
  });

/** Deeply nested, valid JSON within the body limit. */
const deepJson = fc.oneof(
  fc.integer({ min: 100, max: 4000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 100, max: 1500 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.integer({ min: 100, max: 1500 }).map((depth) => '{"port":'.repeat(depth) + '1' + '}'.repeat(depth)),
);

const pollution = fc.constantFrom(
  '{"__proto__": {"polluted": "yes"}, "port": "x"}',
  '{"constructor": {"prototype": {"polluted": "yes"}}, "port": "x"}',
  '[{"__proto__": {"polluted": "yes"}}]',
  '{"start_date": {"__proto__": {"polluted": "yes"}}}',
  '{"__proto__": [], "meter_id": "x", "address": "127.0.0.1", "port": "bad"}',
);

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/vnd.api+json', 'APPLICATION/JSON'];
const OTHER_TYPES = [
  'text/plain', 'text/csv', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
  'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/json; charset=nonsense',
  'text/html', '*/*', 'a/b/c', 'application/json, text/plain', 'application/octet-stream',
];
const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...JSON_TYPES) },
  { weight: 2, arbitrary: fc.constantFrom(...OTHER_TYPES) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

interface Body {
  text?: string;
  type?: string;
  encoding?: string;
}

/** A body for a route, built from what that route would parse, made invalid where it could change something. */
function bodyFor(valid: fc.Arbitrary<unknown> | null, limit: number): fc.Arbitrary<Body & { oversized?: boolean }> {
  const text = fc.oneof(
    ...(valid ? [{ weight: 6, arbitrary: valid.map((value) => JSON.stringify(value)) }] : []),
    { weight: 3, arbitrary: brokenJson },
    { weight: 1, arbitrary: deepJson },
    { weight: 1, arbitrary: pollution },
    { weight: 1, arbitrary: junkText },
  );
  return fc.oneof(
    { weight: 12, arbitrary: fc.record({ text, type: contentType }) },
    { weight: 2, arbitrary: fc.constant({}) },
    {
      weight: 1,
      arbitrary: fc.record({
        text,
        type: fc.constantFrom(...JSON_TYPES),
        encoding: fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'x-nonsense'),
      }),
    },
    {
      weight: 1,
      // Beyond the limit: a JSON type must get 413 before anything is parsed.
      arbitrary: fc
        .tuple(fc.integer({ min: limit + 1, max: limit * 3 }), fc.constantFrom(...JSON_TYPES))
        .map(([size, type]) => ({ text: `"${'y'.repeat(size)}"`, type, oversized: true })),
    },
  );
}

/** Percent-encodes what a raw request line cannot carry (and the characters that would change the path). */
function pathSafe(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    out += code > 0x20 && code < 0x7f && !'?#/%'.includes(char)
      ? char
      : [...Buffer.from(char, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

/** The path with every decodable %XX run decoded (what the service may echo back). */
function lenientlyDecoded(path: string): string {
  return path.replace(/\+/g, ' ').replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => decoded(run) ?? run);
}

function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

const RAW_SEGMENTS = [
  '..', '.', '%00', 'x%00y', '%2e%2e', '..%2f..%2fetc%2fpasswd', '%ff', '%', '%zz', '%c0%ae', ';', 'a;b=c', '%2F',
  '%u0041', '\\..\\', '*', '~', '$', '!', "'", '(', ')', ',', '@', ':', '=', '+', '&', 'bulk', 'data', 'stats',
  '%20', '%09', '%0d%0a', '%E2%80%AE', '%F0%9F%98%80', '%ED%A0%80', '%C0%80',
];

/** A path segment standing for a meter id: existing, absent, malformed, encoded oddly or very long. */
const idSegment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EXISTING) },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,50}$/) },
  { weight: 3, arbitrary: junkText.map(pathSafe) },
  { weight: 2, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
  { weight: 1, arbitrary: fc.integer({ min: 51, max: 8000 }).map((n) => 'a'.repeat(n)) },
  // Beyond Node's 16 KiB header limit: refused by the HTTP parser, answered in the error shape all the same.
  { weight: 1, arbitrary: fc.integer({ min: 17_000, max: 40_000 }).map((n) => 'b'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('%66z-1', 'fz%2D1', 'FZ-1', 'fz-1%00', 'fz-1%20', '%20fz-1', 'fz-1/..', 'fz-1;') },
);

const QUERY_KEYS = ['start_date', 'end_date', 'tz', 'limit', 'offset', 'state', 'enabled', 'format', 'bucket', 'from', 'to', 'cursor'];
const queryPair = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...QUERY_KEYS) }, { weight: 1, arbitrary: junkText }),
  fc.oneof(
    { weight: 3, arbitrary: junkText.map((value) => encodeURIComponent(value.replace(/[\uD800-\uDFFF]/g, '?'))) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%00', '&', '=', '==', '[]', 'a[b]=c', '%ff') },
  ),
);
const query = fc.array(queryPair, { maxLength: 6 }).map((pairs) =>
  pairs.map(([key, value]) => `${pathSafe(key).replace(/[&=]/g, (c) => encodeURIComponent(c))}=${value}`).join('&'),
);

const slash = fc.constantFrom('', '/');

// -------------------------------------------------------------------------------------------------------------
// Requests per endpoint family

const METHODS_ELSEWHERE: Method[] = ['PUT', 'OPTIONS', 'HEAD'];

/** Every pair of a route's path and a method it does not serve. */
const WRONG_METHODS: [Method, string][] = (
  [
    ['/meters', ['PATCH', 'DELETE', 'PUT']],
    ['/meters/fz-1', ['POST', 'PUT']],
    ['/meters/bulk', ['PUT', 'DELETE']],
    ['/meters/fz-1/data', ['POST', 'PATCH', 'DELETE', 'PUT']],
    ['/meters/fz-1/stats', ['POST', 'PATCH', 'DELETE', 'PUT']],
    ['/discovery', ['PATCH', 'DELETE', 'PUT']],
    ['/discovery/1', ['POST', 'PATCH', 'DELETE', 'PUT']],
    ['/health', ['POST', 'PATCH', 'DELETE', 'PUT']],
    ['/metrics', ['POST', 'PATCH', 'DELETE', 'PUT']],
  ] as [string, Method[]][]
).flatMap(([path, methods]) => [...methods, 'OPTIONS' as Method].map((method): [Method, string] => [method, path]));

function request(family: string, method: Method, path: string, body: Body & { oversized?: boolean } = {}): FuzzRequest {
  const headers: Record<string, string> = {};
  if (body.type !== undefined && body.text !== undefined) headers['content-type'] = body.type;
  if (body.encoding !== undefined) headers['content-encoding'] = body.encoding;
  // Beyond the limit of the route it lands on (every method on /meters/bulk... has the bulk limit); a request
  // line beyond 16 KiB is refused (431) before any body is looked at.
  const limit = /^\/meters\/bulk(?:[/?]|$)/i.test(path) ? BULK_BODY_LIMIT : BODY_LIMIT;
  const oversized =
    body.oversized === true && Buffer.byteLength(body.text ?? '') > limit && !body.encoding && method !== 'HEAD' && path.length < 8000;
  return { family, method, path, headers, body: method === 'HEAD' ? undefined : body.text, oversized };
}

const withQuery = (path: string, q: string) => (q === '' ? path : `${path}?${q}`);

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  // GET /meters
  fc.tuple(slash, query, bodyFor(junkValue, BODY_LIMIT)).map(([s, q, b]) => request('GET /meters', 'GET', withQuery(`/meters${s}`, q), b)),
  // POST /meters
  fc.tuple(slash, query, bodyFor(createBody, BODY_LIMIT)).map(([s, q, b]) => request('POST /meters', 'POST', withQuery(`/meters${s}`, q), b)),
  // GET /meters/{id}
  fc.tuple(idSegment, slash, query).map(([id, s, q]) => request('GET /meters/{id}', 'GET', withQuery(`/meters/${id}${s}`, q))),
  // PATCH /meters/{id}: bodies always invalid (an existing meter must not change)
  fc.tuple(idSegment, slash, bodyFor(patchBody, BODY_LIMIT)).map(([id, s, b]) => request('PATCH /meters/{id}', 'PATCH', `/meters/${id}${s}`, b)),
  // DELETE /meters/{id}: never an existing meter
  fc
    .tuple(idSegment.filter((id) => !EXISTING.includes(decoded(id) ?? '')), slash, bodyFor(junkValue, BODY_LIMIT))
    .map(([id, s, b]) => request('DELETE /meters/{id}', 'DELETE', `/meters/${id}${s}`, b)),
  // POST /meters/bulk: JSON arrays of spoiled rows, CSV with bad rows, junk
  fc
    .tuple(
      slash,
      fc.oneof(
        { weight: 3, arbitrary: bodyFor(fc.array(fc.oneof(createBody, junkValue), { maxLength: 40 }), BULK_BODY_LIMIT) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(
              fc.shuffledSubarray(['meter_id', 'address', 'port', 'name', 'enabled', 'colour'], { minLength: 1 }),
              fc.array(fc.array(junkText.map((cell) => cell.replace(/\r|\n/g, ' ')), { minLength: 1, maxLength: 6 }), { maxLength: 20 }),
              fc.constantFrom('text/csv', 'text/plain', 'text/csv; charset=utf-8'),
            )
            .map(([header, rows, type]) => {
              // Every data row names an address that is not an IP literal: none can be registered.
              const columns = header.includes('address') ? header : [...header, 'address'];
              const at = columns.indexOf('address');
              const lines = rows.map((row) => columns.map((_, i) => (i === at ? 'not-an-ip' : row[i % row.length])).join(','));
              return { text: [columns.join(','), ...lines].join('\n'), type };
            }),
        },
      ),
    )
    .map(([s, b]) => request('POST /meters/bulk', 'POST', `/meters/bulk${s}`, b)),
  // GET /meters/{id}/data: on an existing meter always with a date (statistics, never a live read)
  fc.tuple(idSegment, slash, query, junkText, bodyFor(junkValue, BODY_LIMIT)).map(([id, s, q, date, b]) => {
    const existing = EXISTING.includes(decoded(id) ?? '');
    const bound = `start_date=${encodeURIComponent(date.replace(/[\uD800-\uDFFF]/g, '?'))}`;
    return request('GET /meters/{id}/data', 'GET', withQuery(`/meters/${id}/data${s}`, existing ? [q, bound].filter(Boolean).join('&') : q), b);
  }),
  // GET /meters/{id}/stats: query or JSON body bounds
  fc
    .tuple(idSegment, slash, query, bodyFor(fc.record({ start_date: junkValue, end_date: junkValue, tz: junkValue }, { requiredKeys: [] }), BODY_LIMIT))
    .map(([id, s, q, b]) => request('GET /meters/{id}/stats', 'GET', withQuery(`/meters/${id}/stats${s}`, q), b)),
  // POST /discovery: bodies always invalid (no scan starts)
  fc.tuple(slash, bodyFor(discoveryBody, BODY_LIMIT)).map(([s, b]) => request('POST /discovery', 'POST', `/discovery${s}`, b)),
  // GET /discovery, GET /discovery/{id}
  fc.tuple(slash, query).map(([s, q]) => request('GET /discovery', 'GET', withQuery(`/discovery${s}`, q))),
  fc
    .tuple(fc.oneof(idSegment, fc.integer().map(String), fc.constantFrom('1', '0', '-1', '1.5', '1e3', '0x1', '99999999999999999999')), slash)
    .map(([id, s]) => request('GET /discovery/{id}', 'GET', `/discovery/${id}${s}`)),
  // GET /health, GET /metrics (with junk queries and bodies)
  fc.tuple(slash, query, bodyFor(junkValue, BODY_LIMIT)).map(([s, q, b]) => request('GET /health', 'GET', withQuery(`/health${s}`, q), b)),
  fc.tuple(slash, query, bodyFor(junkValue, BODY_LIMIT)).map(([s, q, b]) => request('GET /metrics', 'GET', withQuery(`/metrics${s}`, q), b)),
  // Wrong methods, unknown paths, path tricks around the real routes and the dashboard's files (served at /: a path
  // that is not one of its files must still be the API's JSON 404, a traversal must find nothing)
  fc
    .tuple(
      fc.constantFrom<Method>('GET', 'POST', 'PATCH', 'DELETE', ...METHODS_ELSEWHERE),
      fc.constantFrom('/meters', '/meters/fz-1', '/meters/fz-1/data', '/meters/fz-1/stats', '/discovery', '/health', '/metrics', '', '/vendor', '/index.html'),
      fc.array(fc.oneof(idSegment, fc.constantFrom(...RAW_SEGMENTS)), { minLength: 1, maxLength: 3 }),
      bodyFor(junkValue, BODY_LIMIT),
    )
    // Never a request that lands on a route that could change or read an existing meter.
    .map(([method, base, segments, b]) => request('other', method, `${base}/${segments.join('/')}/x`, b)),
  // A method the route does not have (DELETE /meters, POST /meters/{id}, PATCH /health, ...), with any body.
  fc
    .tuple(fc.constantFrom(...WRONG_METHODS), slash, bodyFor(junkValue, BODY_LIMIT))
    .map(([[method, path], s, b]) => request('other', method, `${path}${s}`, b)),
);

// -------------------------------------------------------------------------------------------------------------
// What every answer must satisfy

/** Signs of internals: stack frames, driver and ORM errors, SQL, file paths. */
const LEAKS: RegExp[] = [
  /\n\s+at /,
  /\bat [\w$.<>]+ \(/,
  /\.(?:ts|js):\d+/,
  /node_modules/,
  /QueryFailedError|TypeORMError|EntityNotFound|EntityMetadataNotFound/,
  /\bSELECT\b[\s\S]*\bFROM\b/i,
  /\bINSERT\s+INTO\b/i,
  /\bUPDATE\s+\w+\s+SET\b/i,
  /\bDELETE\s+FROM\b/i,
  /duplicate key|violates|syntax error at|invalid input syntax|relation "/i,
  /\b(?:TypeError|RangeError|ReferenceError|SyntaxError|URIError)\b/,
];

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** The problems with one answer; empty when it keeps every promise. */
function problemsOf(request: FuzzRequest, answer: Answer): string[] {
  const problems: string[] = [];
  const { status, text } = answer;
  if (status >= 500) problems.push(`status ${status}`);
  const sent = `${request.path} ${lenientlyDecoded(request.path)} ${request.body ?? ''}`;
  for (const leak of LEAKS) if (leak.test(text) && !leak.test(sent)) problems.push(`body leaks ${leak}: ${text.slice(0, 300)}`);
  if (request.oversized && status !== 413) problems.push(`oversized body answered ${status}, not 413`);
  const changes = !['GET', 'HEAD', 'OPTIONS'].includes(request.method);
  if (status >= 200 && status < 300 && changes) {
    // The only write that may answer 2xx to a bad request is bulk: 200 with every row refused.
    let created: unknown = undefined;
    try {
      created = (JSON.parse(text) as { created_count?: unknown }).created_count;
    } catch {
      created = undefined;
    }
    if (!(request.family === 'POST /meters/bulk' && status === 200 && created === 0)) {
      problems.push(`a request that should be refused answered ${status}: ${text.slice(0, 200)}`);
    }
  }
  if (status >= 400 && status < 500 && request.method !== 'HEAD') {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const shape = body as { statusCode?: unknown; error?: unknown; message?: unknown } | undefined;
    const messageOk =
      typeof shape?.message === 'string' ||
      (Array.isArray(shape?.message) && shape.message.length > 0 && shape.message.every((item) => typeof item === 'string'));
    const keysOk =
      typeof body === 'object' && body !== null && Object.keys(body).sort().join(',') === 'error,message,statusCode';
    if (!answer.contentType.startsWith('application/json') || !keysOk || shape?.statusCode !== status || shape?.error !== STATUS_CODES[status] || !messageOk) {
      problems.push(`4xx without the error shape (${answer.contentType}): ${text.slice(0, 200)}`);
    }
  }
  return problems;
}

function describeRequest(request: FuzzRequest): string {
  const body = request.body === undefined ? '' : ` body(${request.body.length}): ${JSON.stringify(request.body.slice(0, 120))}`;
  return `${request.method} ${request.path.slice(0, 200)}${request.path.length > 200 ? `… (${request.path.length} chars)` : ''} ${JSON.stringify(request.headers)}${body}`;
}

async function databaseSnapshot(t: TestApp): Promise<string> {
  const [meters, readings] = await Promise.all([
    t.dataSource.query('SELECT * FROM meters ORDER BY meter_id'),
    t.dataSource.query('SELECT * FROM readings ORDER BY meter_id, taken_at'),
  ]);
  return JSON.stringify({ meters, readings });
}

describe('Hostile clients: generated malformed requests on every endpoint (issue 5.4)', () => {
  let t: TestApp;
  let pool: Pool;
  let before: string;
  const tally = new Map<string, number>();
  const statuses = new Map<number, number>();
  let sentCount = 0;

  beforeAll(async () => {
    t = await createTestApp('fuzz', {
      HTTP_BODY_LIMIT_BYTES: String(BODY_LIMIT),
      HTTP_BULK_BODY_LIMIT_BYTES: String(BULK_BODY_LIMIT),
      POLL_TIMEOUT_MS: '100',
    });
    // The seeded meters point at ports nothing listens on: should anything read one, it fails fast (and the
    // snapshot, which includes their health, would show it).
    const deadPorts = await freePorts(EXISTING.length);
    for (const [index, meterId] of EXISTING.entries()) {
      await insertMeter(t.dataSource, { meter_id: meterId, port: deadPorts[index], enabled: index !== 1, name: index === 0 ? 'seeded' : null });
    }
    await insertReadings(t.dataSource, 'fz-1', [
      ['2023-08-12T00:00:00Z', 100],
      ['2023-08-12T12:00:00Z', 110],
      ['2023-08-13T00:00:00Z', 5],
      ['2023-08-14T00:00:00Z', 30],
    ]);
    const server = t.app.getHttpServer();
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 8, pipelining: 1 });
    before = await databaseSnapshot(t);
  });
  afterAll(async () => {
    await pool?.close();
    await t?.close();
  });

  async function send(fuzz: FuzzRequest): Promise<Answer> {
    const response = await pool.request({
      method: fuzz.method,
      path: fuzz.path,
      headers: fuzz.headers,
      body: fuzz.body,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await response.body.text();
    return { status: response.statusCode, contentType: String(response.headers['content-type'] ?? ''), text };
  }

  it(`answers ${RUNS * REQUESTS_PER_RUN} generated malformed requests with no 5xx, no internals, the error shape and no change`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fuzzRequest, { minLength: REQUESTS_PER_RUN, maxLength: REQUESTS_PER_RUN }), async (requests) => {
        const problems = await Promise.all(
          requests.map(async (fuzz) => {
            sentCount++;
            tally.set(fuzz.family, (tally.get(fuzz.family) ?? 0) + 1);
            let answer: Answer;
            try {
              answer = await send(fuzz);
            } catch (error) {
              return [`${describeRequest(fuzz)}\n    no answer: ${String(error)}`];
            }
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            return problemsOf(fuzz, answer).map((problem) => `${describeRequest(fuzz)}\n    ${problem}`);
          }),
        );
        const found = problems.flat();
        if (found.length > 0) throw new Error(found.join('\n'));
      }),
      // A failure is shrunk towards the smallest batch that still fails; each try is real traffic, so the whole
      // property (runs and shrinking) is bounded in time, and running out of time is a failure too.
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true },
    );
    expect(sentCount).toBeGreaterThanOrEqual(RUNS * REQUESTS_PER_RUN);
  }, 240_000);

  it('covered every endpoint', () => {
    const families = [
      'GET /meters', 'POST /meters', 'GET /meters/{id}', 'PATCH /meters/{id}', 'DELETE /meters/{id}', 'POST /meters/bulk',
      'GET /meters/{id}/data', 'GET /meters/{id}/stats', 'POST /discovery', 'GET /discovery', 'GET /discovery/{id}',
      'GET /health', 'GET /metrics', 'other',
    ];
    for (const family of families) {
      expect({ family, enough: (tally.get(family) ?? 0) >= 200 }).toEqual({ family, enough: true });
    }
    // Refusals of every kind were exercised, not just one.
    for (const status of [400, 404, 413]) expect({ status, seen: (statuses.get(status) ?? 0) > 0 }).toEqual({ status, seen: true });
  });

  it('left the database exactly as it was', async () => {
    expect(await databaseSnapshot(t)).toBe(before);
  });

  it('let no request pollute Object.prototype', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('still serves after it all', async () => {
    const answer = await send({ family: 'check', method: 'GET', path: '/meters/fz-1', headers: {} });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ meter_id: 'fz-1', name: 'seeded' });
  });

  describe('the 5xx this test found, kept as fixed cases', () => {
    const json = { 'content-type': 'application/json' };
    it.each([
      ['an array nested 3,000 deep (stack overflow in class-transformer)', 'POST', '/meters', '['.repeat(3000) + ']'.repeat(3000), 'nested too deeply'],
      ['an array nested 3,000 deep on a GET with a body', 'GET', '/meters/fz-1/stats', '['.repeat(3000) + ']'.repeat(3000), 'nested too deeply'],
      ['an object nested 33 deep', 'POST', '/discovery', '{"a":'.repeat(33) + '1' + '}'.repeat(33), 'nested too deeply'],
      ['a bulk row whose address has a "constructor" key (class-transformer threw)', 'POST', '/meters/bulk', '[{"address":{"constructor":"\\u0000"},"meter_id":""}]', '"constructor"'],
      ['a "constructor" key in a create', 'POST', '/meters', '{"meter_id":"x","address":{"constructor":1},"port":1}', '"constructor"'],
      ['a "__proto__" key', 'PATCH', '/meters/fz-1', '{"__proto__":{"polluted":"yes"},"name":"x"}', '"__proto__"'],
      ['PATCH address null (a TypeError in the address check)', 'PATCH', '/meters/fz-1', '{"address":null}', 'address must'],
      ['PATCH port null', 'PATCH', '/meters/fz-1', '{"port":null}', 'port must be an integer'],
      ['PATCH enabled null', 'PATCH', '/meters/fz-1', '{"enabled":null}', 'enabled must be a boolean'],
      // A valid scan plus a key named after a prototype method passed class-validator's whitelist (a 202, CI run of
      // stop 7, seed 1459755892).
      ['a "hasOwnProperty" key in a valid discovery scan', 'POST', '/discovery', '{"address":"127.0.0.1","port_from":4,"port_to":10,"hasOwnProperty":""}', '"hasOwnProperty"'],
      ['an "isPrototypeOf" key in a valid create', 'POST', '/meters', '{"meter_id":"fz-new","address":"127.0.0.1","port":1,"isPrototypeOf":1}', '"isPrototypeOf"'],
      ['a "__lookupGetter__" key in a valid patch', 'PATCH', '/meters/fz-1', '{"name":"x","__lookupGetter__":1}', '"__lookupGetter__"'],
      ['a "hasOwnProperty" query parameter', 'GET', '/meters?hasOwnProperty=1', undefined, '"hasOwnProperty"'],
      // PostgreSQL text cannot hold U+0000 (break test of issue 5): the insert failed.
      ['a NUL character in a name', 'POST', '/meters', '{"meter_id":"b3","address":"127.0.0.1","port":4401,"name":"a\\u0000b"}', 'NUL character'],
      ['a NUL character in a patched name', 'PATCH', '/meters/fz-1', '{"name":"a\\u0000b"}', 'NUL character'],
      ['a JSON array for a create', 'POST', '/meters', '[]', 'must be a JSON object'],
      ['a "propertyIsEnumerable" query parameter on statistics', 'GET', '/meters/fz-1/stats?from=2023-08-12&to=2023-08-12&propertyIsEnumerable=1', undefined, '"propertyIsEnumerable"'],
    ] as const)('answers 400 to %s', async (_name, method, path, body, message) => {
      const before = await databaseSnapshot(t);
      const answer = await send({ family: 'fixed', method, path, headers: json, body });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text)).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.anything() });
      expect(([] as string[]).concat(JSON.parse(answer.text).message).join(' ')).toContain(message);
      expect(await databaseSnapshot(t)).toBe(before);
    });
  });

  describe('requests the HTTP parser refuses', () => {
    const raw = async (bytes: string): Promise<string> => {
      const { port } = t.app.getHttpServer().address() as AddressInfo;
      return new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let reply = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (reply += chunk));
        socket.on('end', () => resolve(reply));
        socket.on('error', reject);
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
        socket.write(bytes, 'latin1');
      });
    };

    it.each([
      ['a request line longer than 16 KiB', `GET /meters/${'z'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
      ['headers larger than 16 KiB', `GET /meters HTTP/1.1\r\nHost: x\r\nX-Big: ${'z'.repeat(20_000)}\r\n\r\n`, 431],
      ['bytes that are not HTTP', 'HELLO THERE\r\n\r\n', 400],
      ['a NUL in the request line', 'GET /meters/a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['a bad Content-Length', 'POST /meters HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
      ['both Content-Length and chunked', 'POST /meters HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['a broken chunk', 'POST /meters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400],
      ['non-ASCII bytes in the path', 'GET /meters/\u00e9\u00ff HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ])('answers %s in the error shape', async (_name, bytes, status) => {
      const reply = await raw(bytes);
      const [head, body] = reply.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status]}`);
      expect(head.toLowerCase()).toContain('content-type: application/json');
      expect(JSON.parse(body)).toEqual({ statusCode: status, error: STATUS_CODES[status], message: expect.any(String) });
    });
  });
});
