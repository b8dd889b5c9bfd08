/**
 * SPEC 6 period bounds: parsing `start_date` / `end_date` and turning calendar days in a time zone into instants.
 *
 * Zone arithmetic uses only Intl (the ICU time zone data shipped with Node): the wall clock of an instant is read
 * with formatToParts, and a local midnight is found by correcting a guess with the offsets in effect around it.
 */

/** A client error: the message is shown to API users as a 400, so it names the parameter and the problem. */
export class PeriodError extends Error {
  override name = 'PeriodError';
}

/** [start, end): start included, end excluded. timeZone names the zone used for date bounds, as the client gave it. */
export interface Period {
  start: Date;
  end: Date;
  timeZone: string;
}

export interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

const MIN_YEAR = 1970;
const MAX_YEAR = 9999;
/**
 * The last instant a bound may be: the end of year 9999 in UTC. An ISO string of a later instant has a six-digit
 * year ("+010000-01-01T00:00:00.000Z") that PostgreSQL refuses, and the end of 31-12-9999 (the next day's
 * midnight) or a datetime on that day with a negative offset lies there. Later bounds are taken as this instant;
 * the answer's period shows it. (The earliest bound, 01-01-1970 at +14:00, is far inside what PostgreSQL takes.)
 */
export const LATEST_INSTANT = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
const MS_PER_MINUTE = 60_000;
const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;
/** Real offsets since 1970 lie within -12:00..+14:00; a little more covers every instant whose wall time can match. */
const OFFSET_SEARCH_SPAN_MS = 15 * MS_PER_HOUR;
const MAX_ECHO_CHARS = 40;
const MAX_TIME_ZONE_NAME_LENGTH = 100;

// ---------------------------------------------------------------------------------------------------------------
// Time zones

// Building a formatter is the costly part of a conversion. Valid zone names are few, but case variants of them are
// valid too, so the cache is bounded rather than trusting the input.
const formatterCache = new Map<string, Intl.DateTimeFormat>();
const FORMATTER_CACHE_LIMIT = 500;

function wallClockFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatterCache.get(timeZone);
  if (formatter === undefined) {
    // h23: midnight is hour 0 (with hour12: false some ICU versions print 24).
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatterCache.size >= FORMATTER_CACHE_LIMIT) {
      formatterCache.clear();
    }
    formatterCache.set(timeZone, formatter);
  }
  return formatter;
}

/** IANA zone names Intl knows (case-insensitive, links included), and 'UTC'. */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > MAX_TIME_ZONE_NAME_LENGTH) {
    return false;
  }
  try {
    wallClockFormatter(tz);
    return true;
  } catch {
    return false;
  }
}

/**
 * The zone's name for answers: the client's own, in ICU's spelling when it is only a case variant of it. ICU's
 * canonical name is an old alias for some renamed zones (Europe/Kyiv resolves to Europe/Kiev, Asia/Kolkata to
 * Asia/Calcutta): a client that asked for Europe/Kyiv gets Europe/Kyiv back.
 */
function displayTimeZone(tz: string): string {
  const resolved = wallClockFormatter(tz).resolvedOptions().timeZone;
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz;
}

function notLaterThanLatest(instant: Date): Date {
  return instant.getTime() > LATEST_INSTANT.getTime() ? LATEST_INSTANT : instant;
}

/** Date.UTC treats years 0..99 as 1900..1999; this one does not. */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const date = new Date(Date.UTC(2000, 0, 1, hour, minute, second, ms));
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime();
}

/** The local wall clock of instant t in timeZone, expressed as if that wall clock were UTC. */
export function wallClockMs(t: number, timeZone: string): number {
  const fields: Record<string, number> = {};
  for (const part of wallClockFormatter(timeZone).formatToParts(new Date(t))) {
    if (part.type !== 'literal') {
      fields[part.type] = Number(part.value);
    }
  }
  const millis = ((t % 1000) + 1000) % 1000;
  return utcMs(fields.year, fields.month, fields.day, fields.hour, fields.minute, fields.second, millis);
}

/** The zone's offset from UTC at instant t, in milliseconds (east positive). */
export function offsetAt(t: number, timeZone: string): number {
  return wallClockMs(t, timeZone) - t;
}

export function isRealCalendarDate(year: number, month: number, day: number): boolean {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1) {
    return false;
  }
  const date = new Date(utcMs(year, month, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/**
 * The first instant of a calendar day in timeZone: local midnight, or when midnight does not exist there (clocks
 * jump from 23:59:59 to 01:00, or a whole day is skipped) the first instant whose local time is on or after it.
 * When midnight occurs twice (clocks fall back over it), the earlier one. Throws RangeError for a date that does
 * not exist in the calendar or an unknown zone (programming errors; user input goes through parsePeriod).
 */
export function zonedDateToInstant(year: number, month: number, day: number, timeZone: string): Date {
  if (!isRealCalendarDate(year, month, day)) {
    throw new RangeError(`not a calendar date: ${year}-${month}-${day}`);
  }
  const localMidnight = utcMs(year, month, day);

  // Offsets that can be in effect at the instant we look for: those on either side of it (at most one change
  // in 30 hours in practice) and the results of one correction step from each.
  const candidateOffsets = new Set<number>();
  for (const probe of [localMidnight - OFFSET_SEARCH_SPAN_MS, localMidnight, localMidnight + OFFSET_SEARCH_SPAN_MS]) {
    const offset = offsetAt(probe, timeZone);
    candidateOffsets.add(offset);
    candidateOffsets.add(offsetAt(localMidnight - offset, timeZone));
  }

  let earliestMatch: number | null = null;
  for (const offset of candidateOffsets) {
    const t = localMidnight - offset;
    if (wallClockMs(t, timeZone) === localMidnight && (earliestMatch === null || t < earliestMatch)) {
      earliestMatch = t;
    }
  }
  if (earliestMatch !== null) {
    return new Date(earliestMatch);
  }

  // Midnight falls in a gap. Before the gap the wall clock reads earlier than midnight, after it later; find the
  // transition, the first instant whose wall clock is at or past midnight, by bisection at millisecond precision.
  const offsets = [...candidateOffsets];
  let low = localMidnight - Math.max(...offsets); // wall clock before midnight
  let high = localMidnight - Math.min(...offsets); // wall clock after midnight
  if (wallClockMs(low, timeZone) >= localMidnight || wallClockMs(high, timeZone) < localMidnight) {
    // Would need two offset changes within 30 hours around this midnight; no zone has had that since 1970.
    throw new Error(`cannot place midnight of ${year}-${month}-${day} in ${timeZone}`);
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (wallClockMs(middle, timeZone) >= localMidnight) {
      high = middle;
    } else {
      low = middle;
    }
  }
  return new Date(high);
}

/** Calendar arithmetic (proleptic Gregorian), independent of any zone. */
export function addCalendarDays(year: number, month: number, day: number, days: number): CalendarDate {
  const date = new Date(utcMs(year, month, day) + days * MS_PER_DAY);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

// ---------------------------------------------------------------------------------------------------------------
// Bounds

type ParsedBound = { kind: 'date'; date: CalendarDate } | { kind: 'instant'; instant: Date };
/** The parameter a bound came in, as named in messages: start_date / end_date (statistics), from / to (history). */
type BoundName = string;

const ACCEPTED_FORMS = 'DD-MM-YYYY, YYYY-MM-DD, or an ISO 8601 datetime with offset such as 2023-08-12T10:00:00Z';
const DAY_MONTH_YEAR = /^(\d{2})-(\d{2})-(\d{4})$/;
const YEAR_MONTH_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
// The offset is optional here only to give a precise message when it is missing.
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))?$/;
const MAX_OFFSET_MINUTES = 14 * 60;

function echo(value: string): string {
  const printable = Array.from(value.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ''));
  const shown = printable.length > MAX_ECHO_CHARS ? `${printable.slice(0, MAX_ECHO_CHARS).join('')}…` : printable.join('');
  return JSON.stringify(shown);
}

function checkDate(name: BoundName, raw: string, year: number, month: number, day: number): CalendarDate {
  if (year < MIN_YEAR || year > MAX_YEAR) {
    throw new PeriodError(`${name} ${echo(raw)}: the year must be between ${MIN_YEAR} and ${MAX_YEAR}`);
  }
  if (!isRealCalendarDate(year, month, day)) {
    throw new PeriodError(`${name} ${echo(raw)} is not a real calendar date`);
  }
  return { year, month, day };
}

function parseBound(name: BoundName, raw: unknown): ParsedBound {
  if (raw === undefined || raw === null || raw === '') {
    throw new PeriodError(`${name} is required (${ACCEPTED_FORMS})`);
  }
  if (typeof raw !== 'string') {
    throw new PeriodError(`${name} must be given once, as a string (${ACCEPTED_FORMS})`);
  }

  let match = DAY_MONTH_YEAR.exec(raw);
  if (match !== null) {
    return { kind: 'date', date: checkDate(name, raw, Number(match[3]), Number(match[2]), Number(match[1])) };
  }
  match = YEAR_MONTH_DAY.exec(raw);
  if (match !== null) {
    return { kind: 'date', date: checkDate(name, raw, Number(match[1]), Number(match[2]), Number(match[3])) };
  }
  match = DATE_TIME.exec(raw);
  if (match === null) {
    throw new PeriodError(`${name} ${echo(raw)} is not a valid date; use ${ACCEPTED_FORMS}`);
  }

  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fractionText, zulu, sign, offsetHourText, offsetMinuteText] =
    match;
  const date = checkDate(name, raw, Number(yearText), Number(monthText), Number(dayText));
  const hour = Number(hourText);
  const minute = Number(minuteText);
  const second = secondText === undefined ? 0 : Number(secondText);
  if (hour > 23 || minute > 59 || second > 59) {
    throw new PeriodError(`${name} ${echo(raw)} has an invalid time of day (hours 00-23, minutes and seconds 00-59)`);
  }
  const fraction = fractionText ?? '';
  // Date holds milliseconds. Dropping finer digits would move the bound, so they are accepted only when zero.
  if (/[1-9]/.test(fraction.slice(3))) {
    throw new PeriodError(`${name} ${echo(raw)} is more precise than a millisecond`);
  }
  const millis = Number(fraction.slice(0, 3).padEnd(3, '0'));

  if (zulu === undefined && sign === undefined) {
    throw new PeriodError(`${name} ${echo(raw)} needs a UTC offset: add Z or +HH:MM / -HH:MM`);
  }
  let offsetMinutes = 0;
  if (sign !== undefined) {
    const offsetHours = Number(offsetHourText);
    const offsetMins = Number(offsetMinuteText);
    offsetMinutes = offsetHours * 60 + offsetMins;
    if (offsetMins > 59 || offsetMinutes > MAX_OFFSET_MINUTES) {
      throw new PeriodError(`${name} ${echo(raw)} has an invalid UTC offset (at most ±14:00)`);
    }
    if (sign === '-') {
      offsetMinutes = -offsetMinutes;
    }
  }
  const wallClock = utcMs(date.year, date.month, date.day, hour, minute, second, millis);
  return { kind: 'instant', instant: new Date(wallClock - offsetMinutes * MS_PER_MINUTE) };
}

/**
 * Parses the raw `start_date` / `end_date` values (query or body) into the half-open period [start, end).
 * A date-only start is that day's first instant in timeZone; a date-only end includes its whole day, so the end
 * is the next day's first instant. Datetime bounds are instants used as they are.
 */
export function parsePeriod(startRaw: unknown, endRaw: unknown, timeZone: string): Period {
  const startBound = parseBound('start_date', startRaw);
  const endBound = parseBound('end_date', endRaw);
  if (!isValidTimeZone(timeZone)) {
    throw new PeriodError(`tz ${echo(String(timeZone))} is not a known IANA time zone name (e.g. Europe/Berlin, UTC)`);
  }

  const start =
    startBound.kind === 'instant'
      ? startBound.instant
      : zonedDateToInstant(startBound.date.year, startBound.date.month, startBound.date.day, timeZone);
  let end: Date;
  if (endBound.kind === 'instant') {
    end = endBound.instant;
  } else {
    const dayAfter = addCalendarDays(endBound.date.year, endBound.date.month, endBound.date.day, 1);
    end = zonedDateToInstant(dayAfter.year, dayAfter.month, dayAfter.day, timeZone);
  }

  // Two equal instants make a deliberate empty period. With a date bound, equal instants can only come from
  // a start day after the end day (e.g. 13-08 .. 12-08 gives 13-08 00:00 twice), which is a mistake.
  const bothInstants = startBound.kind === 'instant' && endBound.kind === 'instant';
  if (start.getTime() > end.getTime() || (start.getTime() === end.getTime() && !bothInstants)) {
    throw new PeriodError(
      `start_date ${echo(String(startRaw))} is after end_date ${echo(String(endRaw))}` +
        ` (the period would be ${start.toISOString()} .. ${end.toISOString()})`,
    );
  }
  return { start: notLaterThanLatest(start), end: notLaterThanLatest(end), timeZone: displayTimeZone(timeZone) };
}

/**
 * One optional bound of a range in the same forms as parsePeriod's (history's `from` / `to`): null when absent.
 * A date-only bound is a calendar day in timeZone: as the start of a range its first instant, as the end the first
 * instant of the next day, so that the end day is included whole, as in statistics.
 */
export function parseRangeBound(name: string, raw: unknown, side: 'start' | 'end', timeZone: string): Date | null {
  if (raw === undefined) return null;
  if (raw === '' || raw === null) {
    throw new PeriodError(`${name} is empty: leave it out for an open range, or give ${ACCEPTED_FORMS}`);
  }
  const bound = parseBound(name, raw);
  if (bound.kind === 'instant') return notLaterThanLatest(bound.instant);
  if (!isValidTimeZone(timeZone)) {
    throw new PeriodError(`tz ${echo(String(timeZone))} is not a known IANA time zone name (e.g. Europe/Berlin, UTC)`);
  }
  const day = side === 'start' ? bound.date : addCalendarDays(bound.date.year, bound.date.month, bound.date.day, 1);
  return notLaterThanLatest(zonedDateToInstant(day.year, day.month, day.day, timeZone));
}
