/**
 * The opaque cursor of the reading history (SPEC 7): base64url of a small JSON object holding the order and the
 * exact taken_at (microseconds, UTC) of the last reading returned, with a check value over them and the meter id.
 *
 * The check value is no secret and no signature: it makes a cursor that was edited, truncated or copied to
 * another meter fail loudly (400) instead of silently paging from somewhere else. A client that forges one
 * learns nothing it could not ask for with `from` / `to`.
 */
import { createHash } from 'node:crypto';

export type HistoryOrder = 'asc' | 'desc';

export interface CursorPosition {
  order: HistoryOrder;
  /** taken_at as PostgreSQL prints it with microseconds: 2023-08-12T00:00:00.123456Z. */
  key: string;
}

export class CursorError extends Error {
  override name = 'CursorError';
}

const MAX_CURSOR_LENGTH = 200;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;
const CHECK_LENGTH = 16;

function check(meterId: string, order: string, key: string): string {
  return createHash('sha256').update(`${meterId}\n${order}\n${key}`).digest('base64url').slice(0, CHECK_LENGTH);
}

export function isCursorKey(key: string): boolean {
  const match = KEY.exec(key);
  if (match === null) return false;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  // PostgreSQL has no year 0 (1 BC): a key in it failed the query, a 500.
  if (year < 1) return false;
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  date.setUTCFullYear(year);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

export function encodeCursor(meterId: string, position: CursorPosition): string {
  const { order, key } = position;
  return Buffer.from(JSON.stringify({ o: order, k: key, c: check(meterId, order, key) })).toString('base64url');
}

/** Decodes a cursor issued for this meter; throws CursorError with a message for API users otherwise. */
export function decodeCursor(meterId: string, cursor: unknown): CursorPosition {
  const invalid = (why: string) => new CursorError(`cursor is not valid (${why}): use next_cursor of a previous page as it is`);
  if (typeof cursor !== 'string') throw invalid('it must be given once, as a string');
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) {
    throw invalid('not base64url');
  }
  const bytes = Buffer.from(cursor, 'base64url');
  // Base64 ignores stray trailing bits: re-encoding tells a changed last character from the original.
  if (bytes.toString('base64url') !== cursor) throw invalid('not base64url');
  let payload: unknown;
  try {
    payload = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('unreadable');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('unreadable');
  const { o: order, k: key, c: checkValue, ...rest } = payload as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || (order !== 'asc' && order !== 'desc') || typeof key !== 'string' || !isCursorKey(key)) {
    throw invalid('unreadable');
  }
  if (checkValue !== check(meterId, order, key)) throw invalid('altered, or issued for another meter');
  return { order, key };
}
