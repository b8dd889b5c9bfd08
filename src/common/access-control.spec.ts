import { timingSafeEqual } from 'node:crypto';
import { AccessControl, routeAccess } from './access-control';

// The real comparison, observed: which buffers the verifier hands it.
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return { ...actual, timingSafeEqual: jest.fn(actual.timingSafeEqual) };
});

describe('routeAccess', () => {
  it.each([
    ['GET', '/health', false, 'open'],
    ['GET', '/metrics', false, 'open'],
    ['GET', '/meters', false, 'read'],
    ['GET', '/meters/{meterId}', false, 'read'],
    ['GET', '/meters/{meterId}/stats', false, 'read'],
    ['GET', '/meters/{meterId}/data', false, 'live-read'],
    ['GET', '/meters/{meterId}/data', true, 'read'],
    ['HEAD', '/meters/{meterId}/data', false, 'live-read'],
    ['GET', '/discovery/{id}', false, 'read'],
    ['POST', '/meters', false, 'change'],
    ['POST', '/meters/bulk', false, 'change'],
    ['PATCH', '/meters/{meterId}', false, 'change'],
    ['DELETE', '/meters/{meterId}', false, 'change'],
    ['POST', '/discovery', false, 'change'],
    ['PUT', '/health', false, 'change'],
  ] as const)('%s %s (dates: %s) is %s', (method, path, withPeriod, expected) => {
    expect(routeAccess(method, path, withPeriod)).toBe(expected);
  });
});

describe('AccessControl', () => {
  const KEY = 'unit-test-key-1234567890';

  it('needs nothing when no key is set', () => {
    const access = new AccessControl({ apiKey: null, readOpen: false });
    expect(access.enabled).toBe(false);
    for (const kind of ['open', 'read', 'live-read', 'change'] as const) expect(access.needsKey(kind)).toBe(false);
    expect(access.verify({})).toBe('ok');
  });

  it('needs the key for changes and live reads, for reads unless they are open, never for /health and /metrics', () => {
    const closed = new AccessControl({ apiKey: KEY, readOpen: false });
    const readOpen = new AccessControl({ apiKey: KEY, readOpen: true });
    expect(['open', 'read', 'live-read', 'change'].map((kind) => closed.needsKey(kind as never))).toEqual([false, true, true, true]);
    expect(['open', 'read', 'live-read', 'change'].map((kind) => readOpen.needsKey(kind as never))).toEqual([false, false, true, true]);
  });

  it.each([
    [{}, 'missing'],
    [{ 'x-api-key': '' }, 'missing'],
    [{ authorization: 'Basic dXNlcjpwYXNz' }, 'missing'],
    [{ 'x-api-key': KEY }, 'ok'],
    [{ 'x-api-key': ` ${KEY} ` }, 'ok'],
    [{ authorization: `Bearer ${KEY}` }, 'ok'],
    [{ authorization: `bearer ${KEY}` }, 'ok'],
    [{ 'x-api-key': KEY, authorization: `Bearer ${KEY}` }, 'ok'],
    [{ 'x-api-key': KEY.slice(0, -1) }, 'invalid'],
    [{ 'x-api-key': `${KEY}x` }, 'invalid'],
    [{ 'x-api-key': KEY.toUpperCase() }, 'invalid'],
    [{ authorization: 'Bearer' }, 'invalid'],
    [{ authorization: `Bearer ${KEY} extra` }, 'invalid'],
    [{ 'x-api-key': KEY, authorization: 'Bearer wrong' }, 'invalid'],
  ])('verifies %j as %s', (headers, verdict) => {
    expect(new AccessControl({ apiKey: KEY, readOpen: false }).verify(headers)).toBe(verdict);
  });

  it('compares with timingSafeEqual on equal-length digests, whatever length was sent', () => {
    const spy = jest.mocked(timingSafeEqual);
    spy.mockClear();
    const access = new AccessControl({ apiKey: KEY, readOpen: false });
    expect(['x', KEY, 'y'.repeat(5000)].map((sent) => access.verify({ 'x-api-key': sent }))).toEqual([
      'invalid',
      'ok',
      'invalid',
    ]);
    expect(spy).toHaveBeenCalledTimes(3);
    for (const [a, b] of spy.mock.calls) {
      expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
    }
  });
});
