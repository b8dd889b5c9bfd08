import fc from 'fast-check';
import { bucketEdges, BucketSize, isBucketSize, MAX_BUCKETS, TooManyBucketsError } from './buckets';
import { parsePeriod, type Period } from './period';

const HOUR = 3_600_000;

function period(start: string, end: string, timeZone = 'UTC'): Period {
  return parsePeriod(start, end, timeZone);
}

function isoEdges(p: Period, size: BucketSize): string[] {
  return bucketEdges(p, size).map((edge) => new Date(edge).toISOString());
}

function lengthsInHours(edges: readonly number[]): number[] {
  return edges.slice(1).map((edge, i) => (edge - edges[i]) / HOUR);
}

// Oracles independent of the code under test: Intl prints the local wall clock and the offset of an instant.
const labelFormatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = labelFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      timeZoneName: 'longOffset',
    });
    labelFormatters.set(timeZone, f);
  }
  return f;
}
function part(t: number, timeZone: string, type: Intl.DateTimeFormatPartTypes): string {
  return formatter(timeZone).formatToParts(new Date(t)).find((p) => p.type === type)?.value ?? '?';
}
/** Local date, hour and UTC offset: what an hour bucket shares. */
function hourLabel(t: number, timeZone: string): string {
  return ['year', 'month', 'day', 'hour', 'timeZoneName'].map((type) => part(t, timeZone, type as Intl.DateTimeFormatPartTypes)).join(' ');
}
function dayLabel(t: number, timeZone: string): string {
  return ['year', 'month', 'day'].map((type) => part(t, timeZone, type as Intl.DateTimeFormatPartTypes)).join('-');
}
function monthLabel(t: number, timeZone: string): string {
  return ['year', 'month'].map((type) => part(t, timeZone, type as Intl.DateTimeFormatPartTypes)).join('-');
}

describe('bucketEdges: days', () => {
  test('Berlin: 29-10-2023 is 25 hours, 26-03-2023 is 23 hours, their neighbours 24', () => {
    const autumn = bucketEdges(period('28-10-2023', '30-10-2023', 'Europe/Berlin'), 'day');
    expect(autumn.map((edge) => new Date(edge).toISOString())).toEqual([
      '2023-10-27T22:00:00.000Z', // 28th 00:00 +02:00
      '2023-10-28T22:00:00.000Z', // 29th 00:00 +02:00
      '2023-10-29T23:00:00.000Z', // 30th 00:00 +01:00
      '2023-10-30T23:00:00.000Z',
    ]);
    expect(lengthsInHours(autumn)).toEqual([24, 25, 24]);
    const spring = bucketEdges(period('25-03-2023', '27-03-2023', 'Europe/Berlin'), 'day');
    expect(lengthsInHours(spring)).toEqual([24, 23, 24]);
  });

  test('a day whose midnight never happened starts at the first instant after it (Sao Paulo, 04-11-2018)', () => {
    expect(isoEdges(period('03-11-2018', '05-11-2018', 'America/Sao_Paulo'), 'day')).toEqual([
      '2018-11-03T03:00:00.000Z',
      '2018-11-04T03:00:00.000Z', // 01:00 -02:00: clocks jumped from 00:00 to 01:00
      '2018-11-05T02:00:00.000Z',
      '2018-11-06T02:00:00.000Z',
    ]);
  });

  test('a calendar day a zone skipped whole has no bucket (Samoa went from 29-12-2011 to 31-12-2011)', () => {
    const edges = bucketEdges(period('29-12-2011', '31-12-2011', 'Pacific/Apia'), 'day');
    expect(edges.map((edge) => dayLabel(edge, 'Pacific/Apia'))).toEqual(['2011-12-29', '2011-12-31', '2012-01-01']);
    expect(lengthsInHours(edges)).toEqual([24, 24]);
  });

  test('datetime bounds cut the first and last buckets at the period', () => {
    expect(isoEdges(period('2023-08-12T10:30:00Z', '2023-08-14T06:00:00Z'), 'day')).toEqual([
      '2023-08-12T10:30:00.000Z',
      '2023-08-13T00:00:00.000Z',
      '2023-08-14T00:00:00.000Z',
      '2023-08-14T06:00:00.000Z',
    ]);
    expect(isoEdges(period('2023-08-12T10:30:00Z', '2023-08-12T11:00:00Z'), 'day')).toEqual([
      '2023-08-12T10:30:00.000Z',
      '2023-08-12T11:00:00.000Z',
    ]);
  });

  test('an empty period has no bucket', () => {
    expect(bucketEdges(period('2023-08-12T10:00:00Z', '2023-08-12T10:00:00Z'), 'hour')).toHaveLength(1);
  });
});

describe('bucketEdges: hours', () => {
  test('Berlin, 29-10-2023: 25 hour buckets, the repeated 02:00 twice as two distinct UTC hours', () => {
    const edges = bucketEdges(period('29-10-2023', '29-10-2023', 'Europe/Berlin'), 'hour');
    expect(edges).toHaveLength(26);
    expect(lengthsInHours(edges).every((hours) => hours === 1)).toBe(true);
    const labels = edges.slice(0, -1).map((edge) => hourLabel(edge, 'Europe/Berlin'));
    expect(labels.slice(1, 5)).toEqual([
      '2023 10 29 01 GMT+02:00',
      '2023 10 29 02 GMT+02:00', // 00:00Z
      '2023 10 29 02 GMT+01:00', // 01:00Z: the same wall-clock hour again
      '2023 10 29 03 GMT+01:00',
    ]);
    expect(new Set(labels).size).toBe(25);
  });

  test('Berlin, 26-03-2023: 23 hour buckets, no 02:00', () => {
    const edges = bucketEdges(period('26-03-2023', '26-03-2023', 'Europe/Berlin'), 'hour');
    expect(edges).toHaveLength(24);
    const hours = edges.slice(0, -1).map((edge) => part(edge, 'Europe/Berlin', 'hour'));
    expect(hours.slice(0, 4)).toEqual(['00', '01', '03', '04']);
  });

  test('Nepal (+05:45): hour buckets are local clock hours, at :15 past the UTC hour', () => {
    expect(isoEdges(period('2023-08-12T00:00:00Z', '2023-08-12T03:00:00Z', 'Asia/Kathmandu'), 'hour')).toEqual([
      '2023-08-12T00:00:00.000Z',
      '2023-08-12T00:15:00.000Z', // 06:00 +05:45
      '2023-08-12T01:15:00.000Z',
      '2023-08-12T02:15:00.000Z',
      '2023-08-12T03:00:00.000Z',
    ]);
  });

  test('India (+05:30) by date bounds: 24 buckets starting at :30 past the UTC hour', () => {
    const edges = bucketEdges(period('12-08-2023', '12-08-2023', 'Asia/Kolkata'), 'hour');
    expect(edges).toHaveLength(25);
    expect(new Date(edges[0]).toISOString()).toBe('2023-08-11T18:30:00.000Z');
    expect(edges.every((edge) => new Date(edge).getUTCMinutes() === 30)).toBe(true);
  });

  test('Lord Howe moves its clock by 30 minutes: the hour it cuts is a 30-minute bucket', () => {
    // 02-04-2023: 02:00 +11:00 becomes 01:30 +10:30 (at 15:00Z on the 1st).
    const autumn = bucketEdges(period('02-04-2023', '02-04-2023', 'Australia/Lord_Howe'), 'hour');
    expect(lengthsInHours(autumn).filter((hours) => hours !== 1)).toEqual([0.5]);
    expect(autumn[autumn.length - 1] - autumn[0]).toBe(24.5 * HOUR);
    // 01-10-2023: 02:00 +10:30 becomes 02:30 +11:00.
    const spring = bucketEdges(period('01-10-2023', '01-10-2023', 'Australia/Lord_Howe'), 'hour');
    expect(lengthsInHours(spring).filter((hours) => hours !== 1)).toEqual([0.5]);
    expect(spring[spring.length - 1] - spring[0]).toBe(23.5 * HOUR);
  });
});

describe('bucketEdges: months', () => {
  test('calendar months of Berlin, 31 days of March less the lost hour', () => {
    const edges = bucketEdges(period('01-01-2023', '31-12-2023', 'Europe/Berlin'), 'month');
    expect(edges).toHaveLength(13);
    expect(edges.map((edge) => monthLabel(edge, 'Europe/Berlin')).slice(0, -1)).toEqual(
      Array.from({ length: 12 }, (_, i) => `2023-${String(i + 1).padStart(2, '0')}`),
    );
    expect(lengthsInHours(edges)[2]).toBe(31 * 24 - 1);
    expect(lengthsInHours(edges)[9]).toBe(31 * 24 + 1);
  });
});

describe('bucketEdges: bound on the number of buckets', () => {
  test(`${MAX_BUCKETS} buckets are fine, one more is refused before any more work`, () => {
    const start = Date.UTC(2023, 0, 1);
    const exactly = { start: new Date(start), end: new Date(start + MAX_BUCKETS * HOUR), timeZone: 'UTC' };
    expect(bucketEdges(exactly, 'hour')).toHaveLength(MAX_BUCKETS + 1);
    const oneMore = { ...exactly, end: new Date(start + MAX_BUCKETS * HOUR + 1) };
    expect(() => bucketEdges(oneMore, 'hour')).toThrow(TooManyBucketsError);
    expect(() => bucketEdges(oneMore, 'hour')).toThrow('bucket=hour splits this period into more than 10000 buckets');
    // 8,030 years: 96,360 months, about 2.9 million days. Refused after 10,000 of them, not after computing all.
    const centuries = period('01-01-1970', '31-12-9999', 'Europe/Berlin');
    expect(() => bucketEdges(centuries, 'month')).toThrow('bucket=month splits this period into more than 10000');
    expect(() => bucketEdges(centuries, 'day')).toThrow(TooManyBucketsError);
    expect(bucketEdges(period('01-01-1970', '31-12-2799', 'Europe/Berlin'), 'month')).toHaveLength(MAX_BUCKETS + 1 - 40);
  });

  test('isBucketSize', () => {
    expect(['hour', 'day', 'month'].every(isBucketSize)).toBe(true);
    expect(['Hour', 'week', '', undefined, ['day']].some(isBucketSize)).toBe(false);
  });
});

describe('bucketEdges: properties in zones with odd offsets and changes', () => {
  const zones = [
    'UTC',
    'Europe/Berlin',
    'America/Sao_Paulo',
    'America/St_Johns', // -03:30 / -02:30
    'Asia/Kathmandu', // +05:30, then +05:45 since 1986
    'Asia/Kolkata',
    'Australia/Lord_Howe', // 30-minute changes
    'Pacific/Chatham', // +12:45 / +13:45
    'Africa/Monrovia', // -00:44:30 until 1972
    'Pacific/Apia', // skipped 30-12-2011
    'America/New_York',
    'Asia/Beirut', // falls back at midnight to 23:00 of the day before
    'America/Santiago', // changes at midnight
    'America/Havana',
  ];
  const spans = { hour: 4 * 24 * HOUR, day: 120 * 24 * HOUR, month: 4 * 366 * 24 * HOUR };
  /** Instants a little before an offset change of the zone in that year (found with Intl), else anywhere in it. */
  const transitions = new Map<string, number[]>();
  const changesIn = (timeZone: string, year: number): number[] => {
    const key = `${timeZone} ${year}`;
    let found = transitions.get(key);
    if (!found) {
      found = [];
      const DAY = 24 * HOUR;
      for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += DAY) {
        if (part(t, timeZone, 'timeZoneName') !== part(t + DAY, timeZone, 'timeZoneName')) found.push(t);
      }
      transitions.set(key, found);
    }
    return found;
  };
  const instantNearChange = (timeZone: string) =>
    fc
      .tuple(fc.integer({ min: 1970, max: 2036 }), fc.nat(), fc.integer({ min: -2 * 24 * HOUR, max: 24 * HOUR }))
      .map(([year, pick, shift]) => {
        const changes = changesIn(timeZone, year);
        const base = changes.length > 0 ? changes[pick % changes.length] : Date.UTC(year, pick % 12, 1);
        return Math.max(Date.UTC(1970, 0, 2), base + shift);
      });
  const zoneAndStart = fc
    .constantFrom(...zones)
    .chain((timeZone) =>
      fc.tuple(
        fc.constant(timeZone),
        fc.oneof(fc.integer({ min: Date.UTC(1970, 0, 2), max: Date.UTC(2037, 0, 1) }), instantNearChange(timeZone)),
      ),
    );

  const labels: Record<BucketSize, (t: number, timeZone: string) => string> = {
    hour: hourLabel,
    day: dayLabel,
    month: monthLabel,
  };
  test.each<BucketSize>(['hour', 'day', 'month'])(
    '%s buckets partition the period into stretches of one local wall-clock label (Intl as the oracle)',
    (size) => {
      const label = labels[size];
      fc.assert(
        fc.property(zoneAndStart, fc.integer({ min: 0, max: spans[size] }), ([timeZone, start], length) => {
          const p = { start: new Date(start), end: new Date(start + length), timeZone };
          const edges = bucketEdges(p, size);
          expect(edges[0]).toBe(start);
          expect(edges[edges.length - 1]).toBe(start + length);
          for (let k = 0; k + 1 < edges.length; k++) {
            const [from, to] = [edges[k], edges[k + 1]];
            expect(to).toBeGreaterThan(from);
            if (size === 'hour') expect(to - from).toBeLessThanOrEqual(HOUR);
            // One label across the bucket, a new one after each inner edge.
            expect(label(to - 1, timeZone)).toBe(label(from, timeZone));
            expect(label(Math.floor((from + to) / 2), timeZone)).toBe(label(from, timeZone));
            if (k + 2 < edges.length) expect(label(to, timeZone)).not.toBe(label(to - 1, timeZone));
          }
        }),
        { numRuns: size === 'hour' ? 200 : 150 },
      );
    },
  );
});
