/**
 * SPEC 6 buckets: splitting a period into local clock hours, calendar days or calendar months of a time zone.
 *
 * The result is a list of edges [period.start, e1, ..., period.end]: bucket k is [edges[k], edges[k + 1]). The
 * first and last buckets are cut at the period's bounds, so the buckets partition the period exactly: every
 * instant of it lies in one bucket, none outside, and the buckets' figures add up to the period's.
 */
import { addCalendarDays, CalendarDate, offsetAt, Period, wallClockMs, zonedDateToInstant } from './period';

export const BUCKET_SIZES = ['hour', 'day', 'month'] as const;
export type BucketSize = (typeof BUCKET_SIZES)[number];

/** The most buckets one answer carries (10,000 hours is about 14 months, 10,000 days about 27 years). */
export const MAX_BUCKETS = 10_000;

const MS_PER_HOUR = 3_600_000;

export class TooManyBucketsError extends Error {
  override name = 'TooManyBucketsError';
  constructor(
    readonly size: BucketSize,
    readonly limit: number,
  ) {
    super(`bucket=${size} splits this period into more than ${limit} buckets: ask for a shorter period or a larger bucket`);
  }
}

export function isBucketSize(value: unknown): value is BucketSize {
  return typeof value === 'string' && (BUCKET_SIZES as readonly string[]).includes(value);
}

/**
 * The bucket edges of a period, in epoch milliseconds, ascending, no two equal. Throws TooManyBucketsError as soon as
 * more than maxBuckets would be made, so the work is bounded whatever the period.
 */
export function bucketEdges(period: Period, size: BucketSize, maxBuckets = MAX_BUCKETS): number[] {
  const start = period.start.getTime();
  const end = period.end.getTime();
  if (end <= start) return [start]; // an empty period has no bucket
  const edges = [start];
  const push = (edge: number): void => {
    if (edge <= edges[edges.length - 1]) return; // a calendar day skipped whole by the zone (Samoa, 30-12-2011)
    if (edges.length >= maxBuckets) throw new TooManyBucketsError(size, maxBuckets);
    edges.push(edge);
  };
  const inner = size === 'hour' ? hourEdges(start, end, period.timeZone) : calendarEdges(start, end, size, period.timeZone);
  for (const edge of inner) push(edge);
  edges.push(end);
  return edges;
}

/**
 * Local clock hours. A bucket is the time during which the wall clock shows one hour of one day at one UTC offset,
 * so when clocks fall back the repeated hour is two buckets (two distinct UTC hours), and when they spring forward
 * the skipped hour has no bucket. In zones whose offset is not a whole number of hours (India +05:30, Nepal +05:45,
 * Chatham +12:45) the edges fall at :30, :15 or :45 past the UTC hour; where a change moves the clock by 30 minutes
 * (Lord Howe) the hour it cuts is a 30-minute bucket. Yields the edges strictly inside (start, end).
 */
function* hourEdges(start: number, end: number, timeZone: string): Generator<number> {
  let t = start;
  let offset = offsetAt(t, timeZone);
  for (;;) {
    // The next wall-clock hour, if the offset stays as it is until then.
    let next = Math.floor((t + offset) / MS_PER_HOUR) * MS_PER_HOUR + MS_PER_HOUR - offset;
    let nextOffset = offsetAt(next, timeZone);
    if (nextOffset !== offset && offsetAt(next - 1, timeZone) !== offset) {
      // The offset changes strictly inside (t, next): the clock jumps there, which ends this bucket. Zones change
      // their offset at most once an hour, so one change is searched for.
      next = firstInstantWithOtherOffset(t, next - 1, offset, timeZone);
      nextOffset = offsetAt(next, timeZone);
    }
    if (next >= end) return;
    yield next;
    t = next;
    offset = nextOffset;
  }
}

/** The first instant in (low, high] whose offset is not `offset`, given that high's is not (bisection, 1 ms). */
function firstInstantWithOtherOffset(low: number, high: number, offset: number, timeZone: string): number {
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(middle, timeZone) !== offset) high = middle;
    else low = middle;
  }
  return high;
}

/**
 * Calendar days or months: from the first instant of one local day (or first day of a month) to the next, as
 * zonedDateToInstant places them, so a day across a daylight-saving change is 23 or 25 hours long.
 */
function* calendarEdges(start: number, end: number, size: 'day' | 'month', timeZone: string): Generator<number> {
  const wall = new Date(wallClockMs(start, timeZone));
  let current: CalendarDate = {
    year: wall.getUTCFullYear(),
    month: wall.getUTCMonth() + 1,
    day: size === 'day' ? wall.getUTCDate() : 1,
  };
  const following = (date: CalendarDate): CalendarDate =>
    size === 'day'
      ? addCalendarDays(date.year, date.month, date.day, 1)
      : { year: date.month === 12 ? date.year + 1 : date.year, month: date.month === 12 ? 1 : date.month + 1, day: 1 };
  // The offset of the last edge is almost always still in effect at the next midnight: one look-up confirms it
  // (the wall clock then reads exactly midnight there); on the days the offset changed, zonedDateToInstant searches.
  let offset = offsetAt(start, timeZone);
  const firstInstant = (date: CalendarDate): number => {
    const guess = Date.UTC(date.year, date.month - 1, date.day) - offset;
    const offsetThere = offsetAt(guess, timeZone);
    if (offsetThere === offset && date.year >= 1000) return guess;
    const instant = zonedDateToInstant(date.year, date.month, date.day, timeZone).getTime();
    offset = offsetAt(instant, timeZone);
    return instant;
  };
  let next = firstInstant(following(current));
  // Where clocks fall back over midnight, the wall clock of `start` may still show the day before the one that
  // has already begun (days begin at the earlier of two midnights).
  while (next <= start) {
    current = following(current);
    next = firstInstant(following(current));
  }
  while (next < end) {
    yield next;
    current = following(current);
    next = firstInstant(following(current));
  }
}
