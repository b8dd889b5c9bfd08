import fc from 'fast-check';
import { CursorError, decodeCursor, encodeCursor, isCursorKey } from './history-cursor';

const KEY = '2023-08-12T00:00:31.123456Z';

function errorOf(meterId: string, cursor: unknown): CursorError {
  try {
    decodeCursor(meterId, cursor);
  } catch (error) {
    expect(error).toBeInstanceOf(CursorError);
    return error as CursorError;
  }
  throw new Error(`cursor ${String(cursor)} was accepted`);
}

describe('history cursor', () => {
  test('round-trips the order and the exact key, and is opaque base64url', () => {
    for (const order of ['asc', 'desc'] as const) {
      const cursor = encodeCursor('1000', { order, key: KEY });
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor('1000', cursor)).toEqual({ order, key: KEY });
    }
  });

  test('a cursor issued for another meter is refused', () => {
    const cursor = encodeCursor('1000', { order: 'asc', key: KEY });
    expect(errorOf('1001', cursor).message).toContain('altered, or issued for another meter');
  });

  test('any change of one character is refused', () => {
    const cursor = encodeCursor('meter-7', { order: 'desc', key: KEY });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(fc.nat({ max: cursor.length - 1 }), fc.constantFrom(...alphabet), (position, replacement) => {
        fc.pre(cursor[position] !== replacement);
        const altered = cursor.slice(0, position) + replacement + cursor.slice(position + 1);
        expect(() => decodeCursor('meter-7', altered)).toThrow(CursorError);
      }),
      { numRuns: 1000 },
    );
  });

  test('a payload re-encoded with another position but the old check value is refused', () => {
    const cursor = encodeCursor('1000', { order: 'asc', key: KEY });
    const payload = JSON.parse(Buffer.from(cursor, 'base64url').toString());
    const moved = Buffer.from(JSON.stringify({ ...payload, k: '2020-01-01T00:00:00.000000Z' })).toString('base64url');
    expect(errorOf('1000', moved).message).toContain('altered');
    const reversed = Buffer.from(JSON.stringify({ ...payload, o: 'desc' })).toString('base64url');
    expect(errorOf('1000', reversed).message).toContain('altered');
  });

  test.each<[string, unknown]>([
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['JSON but not an object', Buffer.from('[1,2]').toString('base64url')],
    ['an extra field', Buffer.from(JSON.stringify({ o: 'asc', k: KEY, c: 'x', x: 1 })).toString('base64url')],
    ['a bad order', Buffer.from(JSON.stringify({ o: 'up', k: KEY, c: 'x' })).toString('base64url')],
    ['a bad key', Buffer.from(JSON.stringify({ o: 'asc', k: '2023-02-30T00:00:00.000000Z', c: 'x' })).toString('base64url')],
    ['too long', 'A'.repeat(201)],
    ['given twice', ['a', 'b']],
    ['a number', 5],
  ])('refuses %s', (_name, cursor) => {
    expect(errorOf('1000', cursor).message).toMatch(/^cursor is not valid \(.+\): use next_cursor of a previous page as it is$/);
  });

  test('isCursorKey takes PostgreSQL microsecond UTC timestamps of real instants only', () => {
    expect(isCursorKey(KEY)).toBe(true);
    expect(isCursorKey('2024-02-29T23:59:59.999999Z')).toBe(true);
    expect(isCursorKey('0001-01-01T00:00:00.000000Z')).toBe(true);
    expect(isCursorKey('9999-12-31T23:59:59.999999Z')).toBe(true);
    for (const bad of ['2023-02-29T00:00:00.000000Z', '2023-08-12T24:00:00.000000Z', '2023-08-12T00:00:00.000Z', '2023-08-12 00:00:00.000000Z', '2023-08-12T00:00:00.000000+00:00', '0000-01-01T00:00:00.000000Z']) {
      expect({ bad, ok: isCursorKey(bad) }).toEqual({ bad, ok: false });
    }
  });
});
