import {
  PeriodError,
  addCalendarDays,
  isValidTimeZone,
  parsePeriod,
  parseRangeBound,
  zonedDateToInstant,
  type Period,
} from './period';

const HOUR_MS = 3_600_000;

function iso(date: Date): string {
  return date.toISOString();
}

function hoursBetween(start: Date, end: Date): number {
  return (end.getTime() - start.getTime()) / HOUR_MS;
}

function periodOf(start: unknown, end: unknown, tz = 'UTC'): { start: string; end: string; timeZone: string } {
  const period: Period = parsePeriod(start, end, tz);
  return { start: iso(period.start), end: iso(period.end), timeZone: period.timeZone };
}

/** The PeriodError parsePeriod throws; fails the test when it throws nothing or something else. */
function periodErrorOf(start: unknown, end: unknown, tz = 'UTC'): PeriodError {
  try {
    parsePeriod(start, end, tz);
  } catch (error) {
    expect(error).toBeInstanceOf(PeriodError);
    return error as PeriodError;
  }
  throw new Error(`parsePeriod(${String(start)}, ${String(end)}, ${tz}) did not throw`);
}

/** Local calendar date (YYYY-MM-DD) of an instant in a zone: an oracle independent of the code under test. */
const dateFormatters = new Map<string, Intl.DateTimeFormat>();
function localDate(t: number, timeZone: string): string {
  let formatter = dateFormatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormatters.set(timeZone, formatter);
  }
  const parts = formatter.formatToParts(new Date(t));
  const field = (type: string): string => parts.find((part) => part.type === type)?.value ?? '?';
  return `${field('year')}-${field('month')}-${field('day')}`;
}

describe('isValidTimeZone', () => {
  test.each(['UTC', 'Europe/Berlin', 'America/Sao_Paulo', 'Asia/Kolkata', 'Pacific/Apia', 'utc', 'europe/berlin', 'Etc/UTC'])(
    'accepts %p',
    (tz) => {
      expect(isValidTimeZone(tz)).toBe(true);
    },
  );

  test.each(['', 'Mars/Olympus_Mons', 'Europe/Berlin ', 'Berlin', 'Z', 'x'.repeat(200)])('rejects %p', (tz) => {
    expect(isValidTimeZone(tz)).toBe(false);
  });
});

describe('addCalendarDays', () => {
  test.each([
    [[2023, 8, 12, 1], { year: 2023, month: 8, day: 13 }],
    [[2023, 8, 31, 1], { year: 2023, month: 9, day: 1 }],
    [[2023, 12, 31, 1], { year: 2024, month: 1, day: 1 }],
    [[2024, 2, 28, 1], { year: 2024, month: 2, day: 29 }],
    [[2023, 2, 28, 1], { year: 2023, month: 3, day: 1 }],
    [[2024, 3, 1, -1], { year: 2024, month: 2, day: 29 }],
    [[1970, 1, 1, -1], { year: 1969, month: 12, day: 31 }],
    [[9999, 12, 31, 1], { year: 10000, month: 1, day: 1 }],
    [[2023, 1, 1, 365], { year: 2024, month: 1, day: 1 }],
    [[2023, 3, 26, 0], { year: 2023, month: 3, day: 26 }],
  ] as const)('%p -> %p', ([year, month, day, days], expected) => {
    expect(addCalendarDays(year, month, day, days)).toEqual(expected);
  });
});

describe('zonedDateToInstant', () => {
  test.each([
    ['UTC', [2023, 8, 12], '2023-08-12T00:00:00.000Z'],
    ['UTC', [1970, 1, 1], '1970-01-01T00:00:00.000Z'],
    ['UTC', [10000, 1, 1], '+010000-01-01T00:00:00.000Z'],
    ['Europe/Berlin', [2023, 1, 15], '2023-01-14T23:00:00.000Z'], // CET, +01:00
    ['Europe/Berlin', [2023, 8, 12], '2023-08-11T22:00:00.000Z'], // CEST, +02:00
    ['Asia/Kolkata', [2023, 8, 12], '2023-08-11T18:30:00.000Z'], // +05:30
    ['Pacific/Chatham', [2023, 8, 12], '2023-08-11T11:15:00.000Z'], // +12:45
    ['America/St_Johns', [2023, 1, 15], '2023-01-15T03:30:00.000Z'], // -03:30
    ['Pacific/Kiritimati', [2023, 8, 12], '2023-08-11T10:00:00.000Z'], // +14:00
    ['Pacific/Apia', [2023, 8, 12], '2023-08-11T11:00:00.000Z'], // +13:00
    // Midnight did not exist (clocks went from 23:59:59 -03 to 01:00 -02): the day starts at 01:00 local.
    ['America/Sao_Paulo', [2018, 11, 4], '2018-11-04T03:00:00.000Z'],
    // Midnight happened twice (01:00 CDT back to 00:00 CST): the day starts at the first one.
    ['America/Havana', [2023, 11, 5], '2023-11-05T04:00:00.000Z'],
    // Clocks went back from 00:00 -03 to 23:00 -04 on the previous day: midnight came once, an hour later.
    ['America/Asuncion', [2023, 3, 26], '2023-03-26T04:00:00.000Z'],
    // Samoa skipped 30 December 2011 (from -10:00 to +14:00): that day is empty and starts when the 31st does.
    ['Pacific/Apia', [2011, 12, 30], '2011-12-30T10:00:00.000Z'],
    ['Pacific/Apia', [2011, 12, 31], '2011-12-30T10:00:00.000Z'],
    ['Pacific/Apia', [2011, 12, 29], '2011-12-29T10:00:00.000Z'],
  ] as const)('%s %p starts at %s', (tz, [year, month, day], expected) => {
    expect(iso(zonedDateToInstant(year, month, day, tz))).toBe(expected);
  });

  // [zone, date, hours from that day's start to the next day's start]
  test.each([
    ['Europe/Berlin', [2023, 3, 26], 23],
    ['Europe/Berlin', [2023, 10, 29], 25],
    ['Europe/Berlin', [2023, 8, 12], 24],
    ['America/Sao_Paulo', [2018, 11, 4], 23],
    ['America/Havana', [2023, 11, 5], 25],
    ['America/Asuncion', [2023, 3, 25], 25],
    ['Australia/Lord_Howe', [2023, 10, 1], 23.5], // 30-minute DST
    ['Pacific/Apia', [2011, 12, 29], 24],
    ['Pacific/Apia', [2011, 12, 30], 0],
    ['UTC', [2024, 2, 29], 24],
  ] as const)('%s %p lasts %p hours', (tz, [year, month, day], hours) => {
    const next = addCalendarDays(year, month, day, 1);
    const start = zonedDateToInstant(year, month, day, tz);
    const end = zonedDateToInstant(next.year, next.month, next.day, tz);
    expect(hoursBetween(start, end)).toBe(hours);
  });

  test.each([
    [2023, 2, 29],
    [2023, 13, 1],
    [2023, 0, 1],
    [2023, 4, 31],
    [2023, 1, 0],
    [2023.5, 1, 1],
  ])('throws RangeError for %p-%p-%p', (year, month, day) => {
    expect(() => zonedDateToInstant(year, month, day, 'UTC')).toThrow(RangeError);
  });

  test('throws RangeError for an unknown zone', () => {
    expect(() => zonedDateToInstant(2023, 8, 12, 'Mars/Olympus_Mons')).toThrow(RangeError);
  });

  /** Why `dayStart` is not the first instant of local day `label` in tz, or null when it is. */
  function firstInstantProblem(label: string, dayStart: number, tz: string): string | null {
    if (localDate(dayStart, tz) < label) return `${label} ${tz}: ${new Date(dayStart).toISOString()} is before the day`;
    if (localDate(dayStart - 1, tz) >= label) return `${label} ${tz}: the day began before ${new Date(dayStart).toISOString()}`;
    return null;
  }

  function dayLabel(date: { year: number; month: number; day: number }): string {
    return `${date.year}-${String(date.month).padStart(2, '0')}-${String(date.day).padStart(2, '0')}`;
  }

  // Every day of 2010..2024 in zones with unusual transitions: the result is the first instant of that local day
  // (its local date is the day or, for a skipped day, later; a millisecond earlier it was an earlier day), days
  // are 0..26 hours long, and the sweep meets days that are not 24 hours long.
  test.each([
    'Europe/Berlin',
    'America/Sao_Paulo',
    'America/Havana',
    'America/Asuncion',
    'America/Santiago',
    'America/Godthab',
    'Asia/Gaza',
    'Asia/Beirut',
    'Africa/Cairo',
    'Asia/Tehran',
    'Australia/Lord_Howe',
    'Antarctica/Troll',
    'Pacific/Apia',
    'Pacific/Chatham',
    'Europe/Moscow',
  ])('%s: every day of 2010-2024 starts at its first instant', (tz) => {
    const problems: string[] = [];
    let daysNot24Hours = 0;
    let day = { year: 2010, month: 1, day: 1 };
    let dayStart = zonedDateToInstant(day.year, day.month, day.day, tz).getTime();
    while (day.year < 2025) {
      const next = addCalendarDays(day.year, day.month, day.day, 1);
      const nextStart = zonedDateToInstant(next.year, next.month, next.day, tz).getTime();
      const length = nextStart - dayStart;
      if (length !== 24 * HOUR_MS) daysNot24Hours++;
      if (length < 0 || length > 26 * HOUR_MS) problems.push(`${dayLabel(day)} ${tz}: ${length / HOUR_MS} hours long`);
      const problem = firstInstantProblem(dayLabel(day), dayStart, tz);
      if (problem !== null) problems.push(problem);
      day = next;
      dayStart = nextStart;
    }
    expect(problems).toEqual([]);
    expect(daysNot24Hours).toBeGreaterThan(0);
  });

  test('every zone Intl knows: the first of each month of 2023, and 1 January 1970', () => {
    const problems: string[] = [];
    const days = [{ year: 1970, month: 1, day: 1 }, ...Array.from({ length: 12 }, (_, i) => ({ year: 2023, month: i + 1, day: 1 }))];
    const zones = Intl.supportedValuesOf('timeZone');
    for (const tz of zones) {
      for (const day of days) {
        const problem = firstInstantProblem(dayLabel(day), zonedDateToInstant(day.year, day.month, day.day, tz).getTime(), tz);
        if (problem !== null) problems.push(problem);
      }
    }
    expect(zones.length).toBeGreaterThan(300);
    expect(problems).toEqual([]);
  });
});

describe('parsePeriod: accepted bounds', () => {
  test('the SPEC example: the end day is included whole', () => {
    expect(periodOf('12-08-2023', '14-08-2023')).toEqual({
      start: '2023-08-12T00:00:00.000Z',
      end: '2023-08-15T00:00:00.000Z',
      timeZone: 'UTC',
    });
  });

  test.each([
    ['DD-MM-YYYY', '12-08-2023', '14-08-2023', 'UTC', '2023-08-12T00:00:00.000Z', '2023-08-15T00:00:00.000Z'],
    ['ISO dates', '2023-08-12', '2023-08-14', 'UTC', '2023-08-12T00:00:00.000Z', '2023-08-15T00:00:00.000Z'],
    ['one day', '12-08-2023', '12-08-2023', 'UTC', '2023-08-12T00:00:00.000Z', '2023-08-13T00:00:00.000Z'],
    ['leap day', '29-02-2024', '29-02-2024', 'UTC', '2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['year end', '31-12-2023', '31-12-2023', 'UTC', '2023-12-31T00:00:00.000Z', '2024-01-01T00:00:00.000Z'],
    ['first year', '01-01-1970', '01-01-1970', 'UTC', '1970-01-01T00:00:00.000Z', '1970-01-02T00:00:00.000Z'],
    // Its end, 10000-01-01, is taken as the last instant of 9999 (see below).
    ['last year', '31-12-9999', '31-12-9999', 'UTC', '9999-12-31T00:00:00.000Z', '9999-12-31T23:59:59.999Z'],
    ['Berlin summer', '12-08-2023', '12-08-2023', 'Europe/Berlin', '2023-08-11T22:00:00.000Z', '2023-08-12T22:00:00.000Z'],
    ['Berlin spring forward', '26-03-2023', '26-03-2023', 'Europe/Berlin', '2023-03-25T23:00:00.000Z', '2023-03-26T22:00:00.000Z'],
    ['Berlin fall back', '29-10-2023', '29-10-2023', 'Europe/Berlin', '2023-10-28T22:00:00.000Z', '2023-10-29T23:00:00.000Z'],
    ['Sao Paulo missing midnight', '04-11-2018', '04-11-2018', 'America/Sao_Paulo', '2018-11-04T03:00:00.000Z', '2018-11-05T02:00:00.000Z'],
    ['Kolkata +05:30', '12-08-2023', '12-08-2023', 'Asia/Kolkata', '2023-08-11T18:30:00.000Z', '2023-08-12T18:30:00.000Z'],
    ['Apia +13:00', '12-08-2023', '13-08-2023', 'Pacific/Apia', '2023-08-11T11:00:00.000Z', '2023-08-13T11:00:00.000Z'],
    ['datetimes with Z', '2023-08-12T10:00:00Z', '2023-08-12T11:00:00Z', 'UTC', '2023-08-12T10:00:00.000Z', '2023-08-12T11:00:00.000Z'],
    ['datetimes with offsets and milliseconds', '2023-08-12T10:00:00.123+02:00', '2023-08-12T10:00:00.5-01:30', 'UTC', '2023-08-12T08:00:00.123Z', '2023-08-12T11:30:00.500Z'],
    ['datetime without seconds', '2023-08-12T10:00+02:00', '2023-08-12T10:30Z', 'UTC', '2023-08-12T08:00:00.000Z', '2023-08-12T10:30:00.000Z'],
    ['zero digits beyond milliseconds', '2023-08-12T10:00:00.123000000Z', '2023-08-12T10:00:01Z', 'UTC', '2023-08-12T10:00:00.123Z', '2023-08-12T10:00:01.000Z'],
    ['offsets at the limits', '2023-08-12T14:00:00+14:00', '2023-08-12T00:00:00-12:00', 'UTC', '2023-08-12T00:00:00.000Z', '2023-08-12T12:00:00.000Z'],
    ['offset -00:00', '2023-08-12T10:00:00-00:00', '2023-08-12T11:00:00+00:00', 'UTC', '2023-08-12T10:00:00.000Z', '2023-08-12T11:00:00.000Z'],
    ['datetimes ignore tz', '2023-08-12T10:00:00Z', '2023-08-12T11:00:00Z', 'Asia/Kolkata', '2023-08-12T10:00:00.000Z', '2023-08-12T11:00:00.000Z'],
    ['date start, datetime end', '12-08-2023', '2023-08-12T06:00:00Z', 'Europe/Berlin', '2023-08-11T22:00:00.000Z', '2023-08-12T06:00:00.000Z'],
    ['datetime start, date end', '2023-08-12T06:00:00Z', '12-08-2023', 'Europe/Berlin', '2023-08-12T06:00:00.000Z', '2023-08-12T22:00:00.000Z'],
    ['equal datetimes: an empty period', '2023-08-12T10:00:00Z', '2023-08-12T12:00:00+02:00', 'UTC', '2023-08-12T10:00:00.000Z', '2023-08-12T10:00:00.000Z'],
  ])('%s: %s .. %s in %s', (_description, start, end, tz, expectedStart, expectedEnd) => {
    expect(periodOf(start, end, tz)).toMatchObject({ start: expectedStart, end: expectedEnd });
  });

  test('Berlin DST days are 23 and 25 hours long', () => {
    const spring = parsePeriod('26-03-2023', '26-03-2023', 'Europe/Berlin');
    const autumn = parsePeriod('2023-10-29', '2023-10-29', 'Europe/Berlin');
    expect(hoursBetween(spring.start, spring.end)).toBe(23);
    expect(hoursBetween(autumn.start, autumn.end)).toBe(25);
  });

  test('the time zone comes back in its canonical spelling', () => {
    expect(parsePeriod('12-08-2023', '12-08-2023', 'europe/berlin').timeZone).toBe('Europe/Berlin');
  });

  // ICU resolves these renamed zones to their old names (Europe/Kiev, Asia/Calcutta, ...).
  test.each(['Europe/Kyiv', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/Nuuk', 'Asia/Ho_Chi_Minh', 'Pacific/Kanton'])(
    'the time zone %s comes back as the client named it, not as an old alias',
    (tz) => {
      expect(parsePeriod('12-08-2023', '12-08-2023', tz).timeZone).toBe(tz);
    },
  );

  // The end of 31-12-9999 is in year 10000, whose ISO string ("+010000-...") PostgreSQL refuses.
  test.each<[string, string, string, { start: string; end: string }]>([
    ['31-12-9999', '31-12-9999', 'UTC', { start: '9999-12-31T00:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
    ['31-12-9999', '31-12-9999', 'Etc/GMT+12', { start: '9999-12-31T12:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
    ['01-01-1970', '31-12-9999', 'Etc/GMT+12', { start: '1970-01-01T12:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
    ['9999-12-31T23:00:00Z', '9999-12-31T23:59:59.999-12:00', 'UTC', { start: '9999-12-31T23:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
    ['9999-12-31T23:00:00-12:00', '9999-12-31T23:59:59.999-12:00', 'UTC', { start: '9999-12-31T23:59:59.999Z', end: '9999-12-31T23:59:59.999Z' }],
  ])('bounds after the end of year 9999 (%s .. %s, %s) are taken as its last instant', (start, end, tz, expected) => {
    expect(periodOf(start, end, tz)).toMatchObject(expected);
  });

  test('the earliest bound, 1970-01-01 at +14:00, has a four-digit year', () => {
    expect(periodOf('1970-01-01T00:00:00+14:00', '01-01-1970').start).toBe('1969-12-31T10:00:00.000Z');
  });
});

describe('parsePeriod: rejected bounds', () => {
  const ACCEPTED = ['12-08-2023', '2023-08-12T10:00:00Z'];

  test.each([
    [undefined, 'start_date is required'],
    [null, 'start_date is required'],
    ['', 'start_date is required'],
  ])('missing start_date (%p)', (missing, message) => {
    expect(periodErrorOf(missing, '14-08-2023').message).toContain(message);
  });

  test.each([[undefined], [null], ['']])('missing end_date (%p)', (missing) => {
    expect(periodErrorOf('12-08-2023', missing).message).toContain('end_date is required');
  });

  test.each([[12082023], [['12-08-2023', '13-08-2023']], [{ date: '12-08-2023' }], [true]])(
    'non-string bound %p',
    (value) => {
      expect(periodErrorOf(value, '14-08-2023').message).toContain('start_date must be given once, as a string');
      expect(periodErrorOf('12-08-2023', value).message).toContain('end_date must be given once, as a string');
    },
  );

  // [bound, fragment of the message]
  test.each([
    ['31-02-2023', 'is not a real calendar date'],
    ['29-02-2023', 'is not a real calendar date'],
    ['00-01-2023', 'is not a real calendar date'],
    ['32-01-2023', 'is not a real calendar date'],
    ['31-04-2023', 'is not a real calendar date'],
    ['01-13-2023', 'is not a real calendar date'],
    ['01-00-2023', 'is not a real calendar date'],
    ['2023-02-29', 'is not a real calendar date'],
    ['2023-02-31T10:00:00Z', 'is not a real calendar date'],
    ['1-2-2023', 'is not a valid date'],
    ['12-8-2023', 'is not a valid date'],
    ['12-08-23', 'is not a valid date'],
    ['2023-8-12', 'is not a valid date'],
    ['12/08/2023', 'is not a valid date'],
    ['12.08.2023', 'is not a valid date'],
    ['20230812', 'is not a valid date'],
    [' 12-08-2023', 'is not a valid date'],
    ['12-08-2023 ', 'is not a valid date'],
    ['yesterday', 'is not a valid date'],
    ['2023-08-12 10:00:00Z', 'is not a valid date'],
    ['2023-08-12T10Z', 'is not a valid date'],
    ['2023-08-12T10:00:00.Z', 'is not a valid date'],
    ['2023-08-12T10:00:00+0200', 'is not a valid date'],
    ['2023-08-12T10:00:00+2', 'is not a valid date'],
    ['2023-08-12T10:00:00.1234567891Z', 'is not a valid date'],
    ['2023-08-12T10:00:00', 'needs a UTC offset'],
    ['2023-08-12T10:00', 'needs a UTC offset'],
    ['2023-08-12T24:00:00Z', 'invalid time of day'],
    ['2023-08-12T23:60:00Z', 'invalid time of day'],
    ['2023-08-12T23:59:60Z', 'invalid time of day'],
    ['2023-08-12T10:00:00+14:30', 'invalid UTC offset'],
    ['2023-08-12T10:00:00+15:00', 'invalid UTC offset'],
    ['2023-08-12T10:00:00-14:01', 'invalid UTC offset'],
    ['2023-08-12T10:00:00+02:60', 'invalid UTC offset'],
    ['2023-08-12T10:00:00.1234Z', 'more precise than a millisecond'],
    ['31-12-1969', 'the year must be between 1970 and 9999'],
    ['1969-12-31', 'the year must be between 1970 and 9999'],
    ['0000-01-01', 'the year must be between 1970 and 9999'],
    ['1969-12-31T23:00:00Z', 'the year must be between 1970 and 9999'],
  ])('%p: %s', (bound, fragment) => {
    // As start (with a later end) and as end (with an earlier start), so the order check cannot fire first.
    const asStart = periodErrorOf(bound, '2023-08-14');
    expect(asStart.message).toMatch(/^start_date /);
    expect(asStart.message).toContain(fragment);
    const asEnd = periodErrorOf('1970-01-01', bound);
    expect(asEnd.message).toMatch(/^end_date /);
    expect(asEnd.message).toContain(fragment);
  });

  test('the rejected value is echoed, truncated and without control characters', () => {
    const message = periodErrorOf(`bad\n\u001b${'x'.repeat(100)}`, '14-08-2023').message;
    expect(message).toContain(`start_date "bad${'x'.repeat(37)}…" is not a valid date`);
    expect(message).not.toMatch(/[\u0000-\u001f]/);
  });

  test('the message lists the accepted forms', () => {
    expect(periodErrorOf('tomorrow', '14-08-2023').message).toContain('DD-MM-YYYY, YYYY-MM-DD');
  });

  test.each([
    ['later start day', '14-08-2023', '12-08-2023'],
    ['next day start (equal instants from dates)', '13-08-2023', '12-08-2023'],
    ['later start datetime', '2023-08-12T11:00:00Z', '2023-08-12T10:00:00Z'],
    ['datetime start after a date end', '2023-08-13T00:00:01Z', '12-08-2023'],
    ['datetime start equal to the end of a date end', '2023-08-13T00:00:00Z', '12-08-2023'],
    ['date start equal to a datetime end', '12-08-2023', '2023-08-12T00:00:00Z'],
  ])('start after end: %s', (_description, start, end) => {
    const message = periodErrorOf(start, end).message;
    expect(message).toContain(`start_date "${start}" is after end_date "${end}"`);
  });

  test.each(['Mars/Olympus_Mons', '', 'Europe/Berlin '])('unknown time zone %p', (tz) => {
    expect(periodErrorOf(ACCEPTED[0], ACCEPTED[0], tz).message).toMatch(/^tz ".*" is not a known IANA time zone name/);
  });

  test('a bad time zone is reported even when both bounds are datetimes', () => {
    expect(periodErrorOf(ACCEPTED[1], ACCEPTED[1], 'Nowhere/Land').message).toContain('tz "Nowhere/Land"');
  });

  test('errors are PeriodError instances with their name set', () => {
    const error = periodErrorOf(undefined, undefined);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('PeriodError');
  });
});

describe('parseRangeBound (history from / to)', () => {
  const bound = (raw: unknown, side: 'start' | 'end', tz = 'UTC') => parseRangeBound('from', raw, side, tz)?.toISOString() ?? null;

  test('absent is an open bound', () => {
    expect(bound(undefined, 'start')).toBeNull();
  });

  test('a day starts at its first instant and, as an end, includes the whole day', () => {
    expect(bound('12-08-2023', 'start')).toBe('2023-08-12T00:00:00.000Z');
    expect(bound('2023-08-12', 'end')).toBe('2023-08-13T00:00:00.000Z');
    expect(bound('12-08-2023', 'start', 'Europe/Berlin')).toBe('2023-08-11T22:00:00.000Z');
    expect(bound('26-03-2023', 'end', 'Europe/Berlin')).toBe('2023-03-26T22:00:00.000Z');
  });

  test('an instant is used as it is, whatever the zone', () => {
    expect(bound('2023-08-12T10:00:00+02:00', 'start', 'Asia/Kathmandu')).toBe('2023-08-12T08:00:00.000Z');
    expect(bound('2023-08-12T10:00:00.5Z', 'end')).toBe('2023-08-12T10:00:00.500Z');
  });

  test('a bound after the end of year 9999 is taken as its last instant', () => {
    for (const raw of ['9999-12-31', '31-12-9999', '9999-12-31T23:59:59.999-12:00']) {
      expect(bound(raw, 'end', 'Etc/GMT+12')).toBe('9999-12-31T23:59:59.999Z');
    }
    expect(bound('9999-12-31T23:00:00-01:00', 'start')).toBe('9999-12-31T23:59:59.999Z');
  });

  test.each<[unknown, string, string]>([
    ['', 'UTC', 'from is empty'],
    ['31-02-2023', 'UTC', 'from "31-02-2023" is not a real calendar date'],
    ['yesterday', 'UTC', 'from "yesterday" is not a valid date'],
    ['2023-08-12T10:00:00', 'UTC', 'needs a UTC offset'],
    [['12-08-2023', '13-08-2023'], 'UTC', 'from must be given once'],
    ['12-08-2023', 'Mars/Olympus_Mons', 'tz "Mars/Olympus_Mons" is not a known IANA time zone name'],
  ])('refuses %p (tz %s) with a message naming the parameter', (raw, tz, message) => {
    expect(() => parseRangeBound('from', raw, 'start', tz)).toThrow(PeriodError);
    expect(() => parseRangeBound('from', raw, 'start', tz)).toThrow(message);
  });
});
