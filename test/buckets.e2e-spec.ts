import fc from 'fast-check';
import { type Micro, parsePlainDecimal } from '../src/common/decimal';
import { insertMeter, insertReadings } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Buckets and the error envelope of statistics (SPEC 6) end to end: local bucket edges across daylight-saving
 * changes, buckets that add up exactly to their period, coverage and gaps, the time-weighted current.
 */
describe('Statistics buckets GET /meters/{id}/stats?bucket= (SPEC 6)', () => {
  let t: TestApp;
  let berlin: TestApp;

  beforeAll(async () => {
    [t, berlin] = await Promise.all([
      createTestApp('buckets'),
      createTestApp('buckets-tz', { STATS_TIMEZONE: 'Europe/Berlin' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), berlin?.close()]);
  });

  type Reading = readonly [string, string | number, (string | number)?];
  type Query = Record<string, string>;

  interface Figures {
    readings: number;
    first_reading_at: string | null;
    last_reading_at: string | null;
    current_a: { avg: number; time_weighted_avg: number; min: number; max: number } | null;
    consumption_kwh: number;
    average_power_kw: number | null;
    resets: number;
    misreads: number;
    consumption_from: { taken_at: string; energy_kwh: number } | null;
    consumption_to: { taken_at: string; energy_kwh: number } | null;
    coverage: number | null;
    gaps: { from: string; to: string }[];
    gap_count: number;
  }
  interface Bucket extends Figures {
    start: string;
    end: string;
  }
  interface Stats extends Figures {
    meter_id: string;
    period: { start: string; end: string; time_zone: string };
    bucket?: string;
    buckets?: Bucket[];
  }

  const meterWith = async (readings: readonly Reading[], on: TestApp = t): Promise<string> => {
    const { meter_id } = await insertMeter(on.dataSource);
    if (readings.length > 0) await insertReadings(on.dataSource, meter_id, readings);
    return meter_id;
  };

  const stats = async (meterId: string, query: Query, on: TestApp = t): Promise<Stats> =>
    (await on.http().get(`/meters/${meterId}/stats/`).query(query).expect(200)).body;

  /** Readings every `stepMinutes` from `from` (included) to `to` (excluded), energy 0, 1, 2, ... kWh. */
  const steady = (from: string, to: string, stepMinutes: number, current = 10): Reading[] => {
    const readings: Reading[] = [];
    for (let at = Date.parse(from), i = 0; at < Date.parse(to); at += stepMinutes * 60_000, i++) {
      readings.push([new Date(at).toISOString(), i, current]);
    }
    return readings;
  };

  const hours = (bucket: { start: string; end: string }) => (Date.parse(bucket.end) - Date.parse(bucket.start)) / 3_600_000;

  /** A JSON number back to exact micro-units (the figures have at most 6 decimals and 15 digits). */
  const exact = (value: number): Micro => {
    const micro = parsePlainDecimal(String(value));
    if (micro === null) throw new Error(`not a plain decimal: ${value}`);
    return micro;
  };
  const exactSum = (values: number[]): Micro => values.reduce((sum, value) => sum + exact(value), 0n);

  const expectBucketsAddUp = (body: Stats) => {
    const buckets = body.buckets ?? [];
    expect(exactSum(buckets.map((bucket) => bucket.consumption_kwh))).toBe(exact(body.consumption_kwh));
    expect(buckets.reduce((sum, bucket) => sum + bucket.readings, 0)).toBe(body.readings);
    expect(buckets.reduce((sum, bucket) => sum + bucket.resets, 0)).toBe(body.resets);
    expect(buckets.reduce((sum, bucket) => sum + bucket.misreads, 0)).toBe(body.misreads);
    // Contiguous, from the period's start to its end.
    expect(buckets[0]?.start).toBe(body.period.start);
    expect(buckets[buckets.length - 1]?.end).toBe(body.period.end);
    buckets.slice(1).forEach((bucket, k) => expect(bucket.start).toBe(buckets[k].end));
  };

  describe('edges in the time zone', () => {
    it('cuts Berlin days across the autumn change: 29-10-2023 is 25 hours and holds 25 hourly readings', async () => {
      // Hourly readings from 27T21:00Z (the reading before the period) to 30T22:00Z, one kWh a step.
      const id = await meterWith(steady('2023-10-27T21:00:00Z', '2023-10-30T23:00:00Z', 60));
      const body = await stats(id, { start_date: '28-10-2023', end_date: '30-10-2023', tz: 'Europe/Berlin', bucket: 'day' });
      expect(body.bucket).toBe('day');
      expect(body.buckets!.map((bucket) => [bucket.start, bucket.end, hours(bucket), bucket.readings, bucket.consumption_kwh])).toEqual([
        ['2023-10-27T22:00:00.000Z', '2023-10-28T22:00:00.000Z', 24, 24, 24],
        ['2023-10-28T22:00:00.000Z', '2023-10-29T23:00:00.000Z', 25, 25, 25],
        ['2023-10-29T23:00:00.000Z', '2023-10-30T23:00:00.000Z', 24, 24, 24],
      ]);
      expect(body.consumption_kwh).toBe(73);
      expectBucketsAddUp(body);
    });

    it('cuts Berlin days across the spring change: 26-03-2023 is 23 hours', async () => {
      const id = await meterWith(steady('2023-03-24T22:00:00Z', '2023-03-27T22:00:00Z', 60));
      const body = await stats(id, { start_date: '25-03-2023', end_date: '27-03-2023', tz: 'Europe/Berlin', bucket: 'day' });
      expect(body.buckets!.map((bucket) => [hours(bucket), bucket.readings, bucket.consumption_kwh])).toEqual([
        [24, 24, 24],
        [23, 23, 23],
        [24, 24, 24],
      ]);
      expectBucketsAddUp(body);
    });

    it('gives the repeated hour of 29-10-2023 twice, as two distinct UTC hours, and loses none', async () => {
      // Readings every 30 minutes: two in each UTC hour.
      const id = await meterWith(steady('2023-10-28T21:30:00Z', '2023-10-29T23:00:00Z', 30));
      const body = await stats(id, { start_date: '29-10-2023', end_date: '29-10-2023', tz: 'Europe/Berlin', bucket: 'hour' });
      const buckets = body.buckets!;
      expect(buckets).toHaveLength(25);
      expect(buckets.every((bucket) => hours(bucket) === 1 && bucket.readings === 2 && bucket.consumption_kwh === 2)).toBe(true);
      // 02:00 CEST is 00:00Z, 02:00 CET is 01:00Z: both are buckets of their own.
      expect(buckets.slice(1, 5).map((bucket) => bucket.start)).toEqual([
        '2023-10-28T23:00:00.000Z', // 01:00 +02:00
        '2023-10-29T00:00:00.000Z', // 02:00 +02:00
        '2023-10-29T01:00:00.000Z', // 02:00 +01:00
        '2023-10-29T02:00:00.000Z', // 03:00 +01:00
      ]);
      expect(body.consumption_kwh).toBe(50);
      expectBucketsAddUp(body);
    });

    it('has no 02:00 bucket on 26-03-2023 in Berlin: 23 hour buckets', async () => {
      const id = await meterWith(steady('2023-03-25T22:30:00Z', '2023-03-26T22:00:00Z', 30));
      const body = await stats(id, { start_date: '26-03-2023', end_date: '26-03-2023', tz: 'Europe/Berlin', bucket: 'hour' });
      expect(body.buckets).toHaveLength(23);
      expect(body.buckets!.slice(0, 3).map((bucket) => bucket.start)).toEqual([
        '2023-03-25T23:00:00.000Z', // 00:00 +01:00
        '2023-03-26T00:00:00.000Z', // 01:00 +01:00
        '2023-03-26T01:00:00.000Z', // 03:00 +02:00
      ]);
      expectBucketsAddUp(body);
    });

    it('cuts local clock hours at :15 past the UTC hour in Nepal (+05:45)', async () => {
      const id = await meterWith(steady('2023-08-12T00:00:00Z', '2023-08-12T03:00:00Z', 15));
      const body = await stats(id, {
        start_date: '2023-08-12T00:00:00Z',
        end_date: '2023-08-12T03:00:00Z',
        tz: 'Asia/Kathmandu',
        bucket: 'hour',
      });
      expect(body.buckets!.map((bucket) => [bucket.start, bucket.readings])).toEqual([
        ['2023-08-12T00:00:00.000Z', 1], // cut at the period start: 05:45..06:00 local
        ['2023-08-12T00:15:00.000Z', 4],
        ['2023-08-12T01:15:00.000Z', 4],
        ['2023-08-12T02:15:00.000Z', 3], // cut at the period end
      ]);
      expectBucketsAddUp(body);
    });

    it('uses STATS_TIMEZONE for bucket edges, and tz overrides it', async () => {
      const readings = steady('2023-10-27T21:00:00Z', '2023-10-30T23:00:00Z', 60);
      const id = await meterWith(readings, berlin);
      const bounds = { start_date: '29-10-2023', end_date: '29-10-2023', bucket: 'day' };
      const body = await stats(id, bounds, berlin);
      expect(body.period.time_zone).toBe('Europe/Berlin');
      expect(body.buckets!.map(hours)).toEqual([25]);
      expect((await stats(id, { ...bounds, tz: 'UTC' }, berlin)).buckets!.map(hours)).toEqual([24]);
    });

    it('makes calendar months, and cuts the first and last buckets at datetime bounds', async () => {
      const id = await meterWith(steady('2022-12-31T00:00:00Z', '2023-04-01T00:00:00Z', 24 * 60));
      const months = await stats(id, { start_date: '01-01-2023', end_date: '31-03-2023', bucket: 'month' });
      expect(months.buckets!.map((bucket) => [bucket.start, bucket.readings, bucket.consumption_kwh])).toEqual([
        ['2023-01-01T00:00:00.000Z', 31, 31],
        ['2023-02-01T00:00:00.000Z', 28, 28],
        ['2023-03-01T00:00:00.000Z', 31, 31],
      ]);
      const cut = await stats(id, { start_date: '2023-01-15T12:00:00Z', end_date: '2023-02-10T00:00:00Z', bucket: 'month' });
      expect(cut.buckets!.map((bucket) => [bucket.start, bucket.end])).toEqual([
        ['2023-01-15T12:00:00.000Z', '2023-02-01T00:00:00.000Z'],
        ['2023-02-01T00:00:00.000Z', '2023-02-10T00:00:00.000Z'],
      ]);
      expectBucketsAddUp(cut);
    });

    it('keeps empty buckets in the series with zero figures', async () => {
      const id = await meterWith([
        ['2023-08-12T00:30:00Z', '10', '4'],
        ['2023-08-12T03:30:00Z', '16', '8'],
      ]);
      const body = await stats(id, { start_date: '2023-08-12T00:00:00Z', end_date: '2023-08-12T04:00:00Z', bucket: 'hour' });
      expect(body.buckets).toHaveLength(4);
      expect(body.buckets![1]).toEqual({
        start: '2023-08-12T01:00:00.000Z',
        end: '2023-08-12T02:00:00.000Z',
        readings: 0,
        first_reading_at: null,
        last_reading_at: null,
        current_a: null,
        consumption_kwh: 0,
        average_power_kw: null,
        resets: 0,
        misreads: 0,
        consumption_from: null,
        consumption_to: null,
        coverage: null,
        gaps: [],
        gap_count: 0,
      });
      // The 3-hour step is booked at its later reading, in the 03:00 bucket, measured from the 00:30 reading.
      expect(body.buckets![3]).toMatchObject({
        consumption_kwh: 6,
        average_power_kw: 2,
        consumption_from: { taken_at: '2023-08-12T00:30:00.000Z', energy_kwh: 10 },
        consumption_to: { taken_at: '2023-08-12T03:30:00.000Z', energy_kwh: 16 },
        gap_count: 1,
        gaps: [{ from: '2023-08-12T00:30:00.000Z', to: '2023-08-12T03:30:00.000Z' }],
        coverage: 0,
      });
    });
  });

  describe('buckets add up exactly', () => {
    /**
     * A generated history (fixed seed): four to five days of polls every minute or so, with outages, replacements,
     * misreads, sub-kWh decimals, and readings exactly on hour edges.
     */
    const generated = (): Reading[] => {
      const [events] = fc.sample(
        fc.array(
          fc.record({
            gap: fc.oneof(
              { weight: 30, arbitrary: fc.constant(60) },
              { weight: 4, arbitrary: fc.integer({ min: 1, max: 600 }) },
              { weight: 1, arbitrary: fc.integer({ min: 600, max: 3 * 3600 }) },
            ),
            kind: fc.oneof(
              { weight: 40, arbitrary: fc.constant('step' as const) },
              { weight: 1, arbitrary: fc.constant('replace' as const) },
              { weight: 2, arbitrary: fc.constant('misread' as const) },
            ),
            micro: fc.bigInt({ min: 0n, max: 900_000n }),
            current: fc.integer({ min: 0, max: 50 }),
          }),
          { minLength: 1500, maxLength: 1500 },
        ),
        { seed: 20231029, numRuns: 1 },
      );
      const readings: Reading[] = [];
      let at = Date.parse('2023-10-28T00:00:00Z');
      let energy = 44_325_000_000n;
      const kwh = (micro: bigint) => `${micro / 1_000_000n}.${String(micro % 1_000_000n).padStart(6, '0')}`;
      for (const event of events) {
        // Every 50th reading lands exactly on the hour.
        at = readings.length % 50 === 49 ? Math.ceil((at + 1) / 3_600_000) * 3_600_000 : at + event.gap * 1000;
        if (event.kind === 'step') energy += event.micro;
        if (event.kind === 'replace') energy = event.micro;
        const value = event.kind === 'misread' ? energy / 2n : energy;
        readings.push([new Date(at).toISOString(), kwh(value), event.current]);
      }
      return readings;
    };

    let id: string;
    let readings: Reading[];
    beforeAll(async () => {
      readings = generated();
      id = await meterWith(readings);
    });

    it('the generated history has what it is meant to have', async () => {
      const whole = await stats(id, { start_date: '27-10-2023', end_date: '31-12-2023' });
      expect(whole.readings).toBe(1500);
      expect(whole.resets).toBeGreaterThan(10);
      expect(whole.misreads).toBeGreaterThan(20);
      expect(whole.gap_count).toBeGreaterThan(20);
      expect(readings.filter(([at]) => at.endsWith(':00:00.000Z')).length).toBeGreaterThan(25);
    });

    it.each([
      ['hour', 'Europe/Berlin'],
      ['day', 'Europe/Berlin'],
      ['hour', 'Asia/Kathmandu'],
      ['day', 'UTC'],
    ])('%s buckets in %s add up to the period exactly, and each equals its range asked alone', async (bucket, tz) => {
      const body = await stats(id, { start_date: '28-10-2023', end_date: '05-11-2023', tz, bucket });
      expect(body.readings).toBe(1500);
      expectBucketsAddUp(body);
      const { buckets: _buckets, bucket: _bucket, period: _period, ...periodFigures } = body;
      expect(periodFigures.coverage).not.toBeNull();
      // Every fifth bucket, asked as a period of its own, gives the same figures (gaps listed up to 10 in buckets).
      for (const { start, end, ...figures } of body.buckets!.filter((_, k) => k % 5 === 0)) {
        const alone = await stats(id, { start_date: start, end_date: end, tz });
        const { meter_id: _m, period: _p, gaps, ...aloneFigures } = alone;
        const { gaps: bucketGaps, ...bucketFigures } = figures;
        expect(bucketFigures).toEqual(aloneFigures);
        expect(bucketGaps).toEqual(gaps.slice(0, 10));
      }
    });

    it('[a, c) = [a, b) + [b, c) for b on readings, beside them, and on hour edges', async () => {
      const a = '2023-10-28T06:00:00Z';
      const c = '2023-10-29T18:00:00Z';
      const whole = await stats(id, { start_date: a, end_date: c });
      const inside = readings.map(([at]) => at).filter((at) => at > a && at < c);
      const splits = [
        ...inside.filter((_, k) => k % 37 === 0),
        ...inside.filter((_, k) => k % 53 === 0).map((at) => new Date(Date.parse(at) + 1).toISOString()),
        '2023-10-29T00:00:00Z',
        '2023-10-29T01:00:00Z',
      ];
      expect(splits.length).toBeGreaterThan(15);
      for (const b of splits) {
        const [left, right] = await Promise.all([stats(id, { start_date: a, end_date: b }), stats(id, { start_date: b, end_date: c })]);
        expect({ b, sum: exact(left.consumption_kwh) + exact(right.consumption_kwh) }).toEqual({ b, sum: exact(whole.consumption_kwh) });
        expect(left.resets + right.resets).toBe(whole.resets);
        expect(left.misreads + right.misreads).toBe(whole.misreads);
        expect(left.readings + right.readings).toBe(whole.readings);
      }
    });
  });

  describe('error envelope and current', () => {
    it('reports coverage and gaps for the period and each bucket', async () => {
      // Every minute from 10:00 to 10:19, nothing until 10:30, every minute to 10:59; POLL_INTERVAL_SECONDS 60 makes
      // pairs further apart than 150 s gaps. Counted span 10:00..10:59 = 59 min, of which 10:19..10:30 (11 min) a gap.
      const readings = [
        ...steady('2023-08-12T10:00:00Z', '2023-08-12T10:20:00Z', 1),
        ...steady('2023-08-12T10:30:00Z', '2023-08-12T11:00:00Z', 1).map(([at, energy]): Reading => [at, Number(energy) + 100]),
      ];
      const id = await meterWith(readings);
      const body = await stats(id, { start_date: '2023-08-12T10:00:00Z', end_date: '2023-08-12T11:00:00Z', bucket: 'hour' });
      expect(body).toMatchObject({
        readings: 50,
        coverage: 48 / 59,
        gap_count: 1,
        gaps: [{ from: '2023-08-12T10:19:00.000Z', to: '2023-08-12T10:30:00.000Z' }],
        consumption_from: { taken_at: '2023-08-12T10:00:00.000Z' },
        consumption_to: { taken_at: '2023-08-12T10:59:00.000Z' },
      });
      expect(body.buckets![0]).toMatchObject({ coverage: 48 / 59, gap_count: 1 });

      // With a 10-minute poll interval the same pause is within 2.5 intervals: no gap.
      const slow = await createTestApp('buckets-slow', { POLL_INTERVAL_SECONDS: '600' });
      try {
        const slowId = await meterWith(readings, slow);
        expect(await stats(slowId, { start_date: '2023-08-12T10:00:00Z', end_date: '2023-08-12T11:00:00Z' }, slow)).toMatchObject({
          coverage: 1,
          gap_count: 0,
          gaps: [],
        });
      } finally {
        await slow.close();
      }
    });

    it('lists at most 100 gaps for the period and 10 per bucket, and counts them all', async () => {
      const id = await meterWith(steady('2023-08-12T00:00:00Z', '2023-08-13T01:00:00Z', 10));
      const body = await stats(id, { start_date: '12-08-2023', end_date: '12-08-2023', bucket: 'hour' });
      // 144 readings ten minutes apart in the day: 143 gaps (the first has no reading before it).
      expect(body).toMatchObject({ readings: 144, gap_count: 143, coverage: 0 });
      expect(body.gaps).toHaveLength(100);
      expect(body.buckets![0]).toMatchObject({ gap_count: 5 });
      expect(body.buckets![1]).toMatchObject({ gap_count: 6 });
      expect(body.buckets!.every((bucket) => bucket.gaps.length === bucket.gap_count)).toBe(true);
      const day = await stats(id, { start_date: '12-08-2023', end_date: '13-08-2023', bucket: 'day' });
      expect(day.buckets!.map((bucket) => [bucket.gap_count, bucket.gaps.length])).toEqual([
        [143, 10],
        [6, 6],
      ]);
    });

    it('gives the time-weighted current beside the plain mean, per bucket too', async () => {
      // 10 A at 00:00 holds 50 minutes, 40 A at 00:50 holds 10 minutes, 0 A at 01:00 closes the first hour... and
      // opens the second: per bucket, each reading holds until the next reading of the same bucket.
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '1', '10'],
        ['2023-08-12T00:50:00Z', '2', '40'],
        ['2023-08-12T00:59:00Z', '3', '0'],
        ['2023-08-12T01:00:00Z', '4', '20'],
      ]);
      const body = await stats(id, { start_date: '2023-08-12T00:00:00Z', end_date: '2023-08-12T02:00:00Z', bucket: 'hour' });
      // Period: (10 * 50 + 40 * 9 + 0 * 1) / 60 = 860 / 60; plain (10 + 40 + 0 + 20) / 4 = 17.5.
      expect(body.current_a).toEqual({ avg: 17.5, time_weighted_avg: 860 / 60, min: 0, max: 40 });
      // First hour: (10 * 50 + 40 * 9) / 59 = 860 / 59; plain 50 / 3. Second: one reading, its value.
      expect(body.buckets![0].current_a).toEqual({ avg: 50 / 3, time_weighted_avg: 860 / 59, min: 0, max: 40 });
      expect(body.buckets![1].current_a).toEqual({ avg: 20, time_weighted_avg: 20, min: 20, max: 20 });
    });
  });

  describe('requests', () => {
    let id: string;
    beforeAll(async () => {
      id = await meterWith(steady('2023-08-11T23:00:00Z', '2023-08-13T00:00:00Z', 60));
    });

    it('answers the JSON body and /data forms with the same buckets', async () => {
      const bounds = { start_date: '12-08-2023', end_date: '12-08-2023', bucket: 'hour' };
      const query = await stats(id, bounds);
      expect(query.buckets).toHaveLength(24);
      expect((await t.http().get(`/meters/${id}/stats`).send(bounds).expect(200)).body).toEqual(query);
      expect((await t.http().get(`/meters/${id}/data/`).query(bounds).expect(200)).body).toEqual(query);
      expect((await t.http().get(`/meters/${id}/data`).send(bounds).expect(200)).body).toEqual(query);
    });

    it('leaves buckets out when no bucket is asked for', async () => {
      const body = await stats(id, { start_date: '12-08-2023', end_date: '12-08-2023' });
      expect(body).not.toHaveProperty('buckets');
      expect(body).not.toHaveProperty('bucket');
    });

    it('answers up to 10,000 buckets and refuses more with 400 before reading anything', async () => {
      const start = Date.parse('2023-01-01T00:00:00Z');
      const at = (ms: number) => new Date(ms).toISOString();
      const most = await stats(id, { start_date: at(start), end_date: at(start + 10_000 * 3_600_000), bucket: 'hour' });
      expect(most.buckets).toHaveLength(10_000);
      expectBucketsAddUp(most);
      const response = await t
        .http()
        .get(`/meters/${id}/stats`)
        .query({ start_date: at(start), end_date: at(start + 10_000 * 3_600_000 + 1), bucket: 'hour' });
      expect(response.status).toBe(400);
      expect(response.body.message).toBe(
        'bucket=hour splits this period into more than 10000 buckets: ask for a shorter period or a larger bucket',
      );
      const years = await t.http().get(`/meters/${id}/stats`).query({ start_date: '01-01-1970', end_date: '31-12-9999', bucket: 'day' });
      expect(years.status).toBe(400);
    });

    it.each<[string, string, Query, string]>([
      ['an unknown bucket', '/stats', { start_date: '12-08-2023', end_date: '12-08-2023', bucket: 'week' }, 'bucket must be one of hour, day, month'],
      ['a bucket with a wrong case', '/stats', { start_date: '12-08-2023', end_date: '12-08-2023', bucket: 'Day' }, 'bucket must be one of hour, day, month'],
      ['a bucket without dates on /data (not a live read)', '/data', { bucket: 'day' }, 'start_date is required'],
      ['a bucket without dates on /stats', '/stats', { bucket: 'day' }, 'start_date is required'],
    ])('answers 400 for %s', async (_name, path, query, message) => {
      const response = await t.http().get(`/meters/${id}${path}`).query(query);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(JSON.stringify(response.body.message)).toContain(message);
    });

    it('answers 400 for a bucket given twice and 404 for an unknown meter', async () => {
      const twice = await t.http().get(`/meters/${id}/stats?start_date=12-08-2023&end_date=12-08-2023&bucket=day&bucket=hour`);
      expect(twice.status).toBe(400);
      expect(twice.body.message).toContain('bucket must be one of hour, day, month (given once)');
      const missing = await t.http().get('/meters/no-such-meter/stats').query({ start_date: '12-08-2023', end_date: '12-08-2023', bucket: 'day' });
      expect(missing.status).toBe(404);
    });
  });
});
