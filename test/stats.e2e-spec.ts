import { countReadings, insertMeter, insertReadings } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Statistics (SPEC 5.3 and 6) end to end: the real app, the real migrations, hand-made histories whose totals are
 * worked out by hand in the comments. Every test inserts its own meter, so tests do not see each other's readings.
 */
describe('Statistics GET /meters/{id}/stats (SPEC 5.3, 6)', () => {
  let t: TestApp;
  let berlin: TestApp;

  beforeAll(async () => {
    [t, berlin] = await Promise.all([
      createTestApp('stats'),
      createTestApp('stats-tz', { STATS_TIMEZONE: 'Europe/Berlin' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), berlin?.close()]);
  });

  type Query = Record<string, string>;
  type Reading = readonly [string, string | number, (string | number)?];

  /** A fresh meter with the given history in app `on`. */
  const meterWith = async (readings: readonly Reading[], on: TestApp = t): Promise<string> => {
    const { meter_id } = await insertMeter(on.dataSource);
    if (readings.length > 0) await insertReadings(on.dataSource, meter_id, readings);
    return meter_id;
  };

  /** The query-string form, expecting 200; supertest's .query() percent-encodes '+' in offsets. */
  const stats = async (meterId: string, query: Query, on: TestApp = t) =>
    (await on.http().get(`/meters/${meterId}/stats/`).query(query).expect(200)).body;

  /** The request, whatever its status. */
  const statsResponse = (meterId: string, query: Query, on: TestApp = t) =>
    on.http().get(`/meters/${meterId}/stats/`).query(query);

  const DAY_12 = { start_date: '12-08-2023', end_date: '12-08-2023' };

  describe('counter semantics (SPEC 5.3)', () => {
    it('counts a reset as the new counter value: 44325, 44400, 12, 50 is 125 kWh with one reset', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '44325'],
        ['2023-08-12T01:00:00Z', '44400'],
        ['2023-08-12T02:00:00Z', '12'],
        ['2023-08-12T03:00:00Z', '50'],
      ]);
      // 44325 first (no baseline, adds 0); 44400 - 44325 = 75; 12 < 44400 and the next (50) stays below 44400,
      // so a reset adding its own 12; 50 - 12 = 38. 75 + 12 + 38 = 125.
      const body = await stats(id, DAY_12);
      expect(body).toMatchObject({
        readings: 4,
        consumption_kwh: 125,
        resets: 1,
        misreads: 0,
        consumption_from: { taken_at: '2023-08-12T00:00:00.000Z', energy_kwh: 44325 },
        consumption_to: { taken_at: '2023-08-12T03:00:00.000Z', energy_kwh: 50 },
      });
    });

    it('skips a misread (100, 110, 20, 120 is 20 kWh) and keeps the misread reading stored', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '100'],
        ['2023-08-12T01:00:00Z', '110'],
        ['2023-08-12T02:00:00Z', '20'],
        ['2023-08-12T03:00:00Z', '120'],
      ]);
      // 20 is below both neighbours and 120 >= 110: a misread, adding 0. 110 - 100 = 10; 120 counts from 110
      // (the reading before the dip): 10. 10 + 0 + 10 = 20.
      const body = await stats(id, DAY_12);
      expect(body).toMatchObject({ readings: 4, consumption_kwh: 20, resets: 0, misreads: 1 });
      expect(await countReadings(t.dataSource, id)).toBe(4);
      const stored: { energy_kwh: string }[] = await t.dataSource.query(
        `SELECT energy_kwh FROM readings WHERE meter_id = $1 AND taken_at = '2023-08-12T02:00:00Z'`,
        [id],
      );
      expect(stored.map((row) => Number(row.energy_kwh))).toEqual([20]);
    });

    it('takes a dip as a misread only when the next reading is back at or above the one before it', async () => {
      const backAt = await meterWith([
        ['2023-08-12T00:00:00Z', '100'],
        ['2023-08-12T01:00:00Z', '110'],
        ['2023-08-12T02:00:00Z', '20'],
        ['2023-08-12T03:00:00Z', '110'],
      ]);
      // 110 is back at 110 exactly: 20 is a misread. 10 + 0 + (110 - 110) = 10.
      expect(await stats(backAt, DAY_12)).toMatchObject({ consumption_kwh: 10, resets: 0, misreads: 1 });
      const staysBelow = await meterWith([
        ['2023-08-12T00:00:00Z', '100'],
        ['2023-08-12T01:00:00Z', '110'],
        ['2023-08-12T02:00:00Z', '20'],
        ['2023-08-12T03:00:00Z', '105'],
      ]);
      // 105 < 110: the drop to 20 stays down, a reset adding 20; then 105 - 20 = 85. 10 + 20 + 85 = 115.
      expect(await stats(staysBelow, DAY_12)).toMatchObject({ consumption_kwh: 115, resets: 1, misreads: 0 });
    });

    it('counts a dip in the newest reading as a reset until the next reading shows it was a misread', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '100'],
        ['2023-08-12T01:00:00Z', '110'],
        ['2023-08-12T02:00:00Z', '20'],
      ]);
      // No next reading yet: 20 is a reset adding its own value. 110 - 100 = 10, + 20 = 30, one reset.
      expect(await stats(id, DAY_12)).toMatchObject({ consumption_kwh: 30, resets: 1, misreads: 0 });

      await insertReadings(t.dataSource, id, [['2023-08-12T03:00:00Z', '120']]);
      // Now 20 is a misread: 10 + 0 + (120 - 110) = 20, no reset.
      expect(await stats(id, DAY_12)).toMatchObject({ readings: 4, consumption_kwh: 20, resets: 0, misreads: 1 });
    });

    it('keeps a drop that stays down a reset, also when the reading that confirms it is after the period', async () => {
      const id = await meterWith([
        ['2023-08-12T10:00:00Z', '44325'],
        ['2023-08-12T11:00:00Z', '44400'],
        ['2023-08-12T23:00:00Z', '12'],
        ['2023-08-13T01:00:00Z', '50'],
      ]);
      // 12th: 0 + 75 + 12 (reset: 50 stays below 44400) = 87. 13th: 50 - 12 = 38. 87 + 38 = 125.
      expect(await stats(id, DAY_12)).toMatchObject({ readings: 3, consumption_kwh: 87, resets: 1, misreads: 0 });
      expect(await stats(id, { start_date: '13-08-2023', end_date: '13-08-2023' })).toMatchObject({
        readings: 1,
        consumption_kwh: 38,
        resets: 0,
      });
    });
  });

  describe('period boundaries (SPEC 6)', () => {
    const a = '2023-08-12T00:00:00Z';
    const b = '2023-08-13T00:00:00Z';
    const c = '2023-08-14T00:00:00Z';

    it('counts from the last reading strictly before the start, so energy across a boundary is not lost', async () => {
      const id = await meterWith([
        ['2023-08-11T23:00:00Z', '1000'],
        ['2023-08-12T01:00:00Z', '1010'],
        ['2023-08-12T05:00:00Z', '1025'],
      ]);
      // The 1000 -> 1010 step is booked at 01:00 on the 12th: 10 + (1025 - 1010) = 25, from the 11th's reading.
      const body = await stats(id, { start_date: a, end_date: b });
      expect(body).toMatchObject({
        readings: 2,
        consumption_kwh: 25,
        consumption_from: { taken_at: '2023-08-11T23:00:00.000Z', energy_kwh: 1000 },
        consumption_to: { taken_at: '2023-08-12T05:00:00.000Z', energy_kwh: 1025 },
      });
      // The 11th alone books nothing: its only reading is the first of the history.
      expect(await stats(id, { start_date: '11-08-2023', end_date: '11-08-2023' })).toMatchObject({
        readings: 1,
        consumption_kwh: 0,
      });
    });

    it('adds up: [a, c) = [a, b) + [b, c), with readings on b, a misread before b and a reset after', async () => {
      const id = await meterWith([
        ['2023-08-11T22:00:00Z', '500'],
        ['2023-08-12T06:00:00Z', '520'],
        ['2023-08-12T23:00:00Z', '505'], // misread: below 520 and 530, and 530 >= 520
        [b, '530'], // exactly on b: in [b, c), not in [a, b)
        ['2023-08-13T12:00:00Z', '7'], // reset: the next one, 9, stays below 530
        ['2023-08-13T18:00:00Z', '9'],
        [c, '40'], // exactly on c: outside both
      ]);
      // [a, b): 520 - 500 = 20; 505 misread adds 0 (decided by 530, which lies outside the period). 20, misreads 1.
      const ab = await stats(id, { start_date: a, end_date: b });
      expect(ab).toMatchObject({
        readings: 2,
        last_reading_at: '2023-08-12T23:00:00.000Z',
        consumption_kwh: 20,
        resets: 0,
        misreads: 1,
        consumption_from: { taken_at: '2023-08-11T22:00:00.000Z', energy_kwh: 500 },
      });
      // [b, c): 530 counts from 520 (the misread is skipped as a baseline): 10; 7 is a reset: 7; 9 - 7 = 2. 19.
      const bc = await stats(id, { start_date: b, end_date: c });
      expect(bc).toMatchObject({
        readings: 3,
        first_reading_at: '2023-08-13T00:00:00.000Z',
        last_reading_at: '2023-08-13T18:00:00.000Z',
        consumption_kwh: 19,
        resets: 1,
        misreads: 0,
        consumption_from: { taken_at: '2023-08-12T06:00:00.000Z', energy_kwh: 520 },
      });
      // [a, c): 20 + 0 + 10 + 7 + 2 = 39 = 20 + 19.
      const ac = await stats(id, { start_date: a, end_date: c });
      expect(ac).toMatchObject({ readings: 5, consumption_kwh: 39, resets: 1, misreads: 1 });
      expect(ac.consumption_kwh).toBe(ab.consumption_kwh + bc.consumption_kwh);
      expect(ac.resets).toBe(ab.resets + bc.resets);
      expect(ac.misreads).toBe(ab.misreads + bc.misreads);
      expect(ac.readings).toBe(ab.readings + bc.readings);
    });

    it('includes the end day whole and answers the period [start 00:00, end + 1 day 00:00)', async () => {
      const id = await meterWith([
        ['2023-08-11T23:59:59Z', '10'],
        ['2023-08-12T00:00:00Z', '20'],
        ['2023-08-14T23:59:59Z', '30'],
        ['2023-08-15T00:00:00Z', '45'],
      ]);
      // In: 12T00:00:00 and 14T23:59:59. (20 - 10) + (30 - 20) = 20; the 15th's 45 is outside.
      const body = await stats(id, { start_date: '12-08-2023', end_date: '14-08-2023' });
      expect(body).toMatchObject({
        meter_id: id,
        period: { start: '2023-08-12T00:00:00.000Z', end: '2023-08-15T00:00:00.000Z', time_zone: 'UTC' },
        readings: 2,
        first_reading_at: '2023-08-12T00:00:00.000Z',
        last_reading_at: '2023-08-14T23:59:59.000Z',
        consumption_kwh: 20,
      });
    });

    it('takes datetime bounds as instants: start included, end excluded, offsets honoured', async () => {
      const id = await meterWith([
        ['2023-08-12T08:00:00Z', '100'],
        ['2023-08-12T10:00:00Z', '104'],
        ['2023-08-12T12:00:00Z', '110'],
      ]);
      // 10:00+02:00 is 08:00Z (included), 14:00+02:00 is 12:00Z (excluded): readings 100 and 104, 104 - 100 = 4.
      const body = await stats(id, { start_date: '2023-08-12T10:00:00+02:00', end_date: '2023-08-12T14:00:00+02:00' });
      expect(body).toMatchObject({
        period: { start: '2023-08-12T08:00:00.000Z', end: '2023-08-12T12:00:00.000Z' },
        readings: 2,
        first_reading_at: '2023-08-12T08:00:00.000Z',
        last_reading_at: '2023-08-12T10:00:00.000Z',
        consumption_kwh: 4,
      });
      // Equal instants are an empty period, not an error.
      expect(await stats(id, { start_date: '2023-08-12T10:00:00Z', end_date: '2023-08-12T10:00:00Z' })).toMatchObject({
        readings: 0,
        consumption_kwh: 0,
      });
    });
  });

  describe('time zones', () => {
    // 21:30Z on the 11th is 23:30 on the 11th in Berlin (CEST, +02:00); 22:30Z is 00:30 on the 12th;
    // 21:59:59Z on the 12th is 23:59:59 on the 12th; 22:00Z on the 12th is midnight of the 13th.
    const history: Reading[] = [
      ['2023-08-11T21:30:00Z', '90'],
      ['2023-08-11T22:30:00Z', '100'],
      ['2023-08-12T21:59:59Z', '130'],
      ['2023-08-12T22:00:00Z', '150'],
    ];
    // Berlin's 12th, [11T22:00Z, 12T22:00Z): 100 and 130; (100 - 90) + (130 - 100) = 40.
    const berlinDay = {
      period: { start: '2023-08-11T22:00:00.000Z', end: '2023-08-12T22:00:00.000Z', time_zone: 'Europe/Berlin' },
      readings: 2,
      first_reading_at: '2023-08-11T22:30:00.000Z',
      last_reading_at: '2023-08-12T21:59:59.000Z',
      consumption_kwh: 40,
    };
    // UTC's 12th, [12T00:00Z, 13T00:00Z): 130 and 150; (130 - 100) + (150 - 130) = 50.
    const utcDay = {
      period: { start: '2023-08-12T00:00:00.000Z', end: '2023-08-13T00:00:00.000Z', time_zone: 'UTC' },
      readings: 2,
      first_reading_at: '2023-08-12T21:59:59.000Z',
      consumption_kwh: 50,
    };

    it('moves date bounds to local midnight with the tz parameter, and defaults to UTC', async () => {
      const id = await meterWith(history);
      expect(await stats(id, DAY_12)).toMatchObject(utcDay);
      expect(await stats(id, { ...DAY_12, tz: 'Europe/Berlin' })).toMatchObject(berlinDay);
    });

    it('places a date bound on the first instant of the local day across daylight-saving changes', async () => {
      const id = await meterWith([]);
      // Berlin, 26-03-2023: clocks go 02:00 -> 03:00, so the day runs from 00:00 +01:00 (25T23:00Z) to
      // 00:00 +02:00 on the 27th (26T22:00Z): 23 hours.
      expect(await stats(id, { start_date: '26-03-2023', end_date: '26-03-2023', tz: 'Europe/Berlin' })).toMatchObject({
        period: { start: '2023-03-25T23:00:00.000Z', end: '2023-03-26T22:00:00.000Z' },
      });
      // Sao Paulo, 04-11-2018: clocks jumped from 00:00 -03:00 to 01:00 -02:00, so midnight never happened there;
      // the day starts at 01:00 -02:00 = 03:00Z and ends at 00:00 -02:00 on the 5th = 02:00Z.
      expect(
        await stats(id, { start_date: '04-11-2018', end_date: '04-11-2018', tz: 'America/Sao_Paulo' }),
      ).toMatchObject({ period: { start: '2018-11-04T03:00:00.000Z', end: '2018-11-05T02:00:00.000Z' } });
    });

    it('uses STATS_TIMEZONE for date bounds, and tz overrides it', async () => {
      const id = await meterWith(history, berlin);
      expect(await stats(id, DAY_12, berlin)).toMatchObject(berlinDay);
      expect(await stats(id, { ...DAY_12, tz: 'UTC' }, berlin)).toMatchObject(utcDay);
    });

    it('accepts ISO dates, and datetimes with an offset are instants whatever the zone', async () => {
      const id = await meterWith(history, berlin);
      expect(await stats(id, { start_date: '2023-08-12', end_date: '2023-08-12' }, berlin)).toMatchObject(berlinDay);
      const instants = { start_date: '2023-08-12T00:00:00+02:00', end_date: '2023-08-13T00:00:00+02:00' };
      const { period: _berlinPeriod, ...berlinFigures } = berlinDay;
      expect(await stats(id, instants, berlin)).toMatchObject(berlinFigures);
      expect(await stats(id, { ...instants, tz: 'UTC' }, berlin)).toMatchObject({
        ...berlinFigures,
        period: { start: '2023-08-11T22:00:00.000Z', end: '2023-08-12T22:00:00.000Z' },
      });
    });
  });

  describe('errors', () => {
    let id: string;
    beforeAll(async () => {
      id = await meterWith([['2023-08-12T01:00:00Z', '1']]);
    });

    it.each([
      ['31-02-2023 (no rollover)', { start_date: '31-02-2023', end_date: '01-03-2023' }, 'start_date "31-02-2023" is not a real calendar date'],
      ['2023-02-31', { start_date: '01-02-2023', end_date: '2023-02-31' }, 'end_date "2023-02-31" is not a real calendar date'],
      ['1-2-2023 (one-digit day and month)', { start_date: '1-2-2023', end_date: '01-03-2023' }, 'start_date "1-2-2023" is not a valid date'],
      ['a missing start_date', { end_date: '14-08-2023' }, 'start_date is required'],
      ['a missing end_date', { start_date: '12-08-2023' }, 'end_date is required'],
      ['an empty end_date', { start_date: '12-08-2023', end_date: '' }, 'end_date is required'],
      ['start after end', { start_date: '14-08-2023', end_date: '12-08-2023' }, 'start_date "14-08-2023" is after end_date "12-08-2023"'],
      // 13-08 .. 12-08 is [13T00:00, 13T00:00): equal instants, but a start day after the end day is a mistake.
      ['start one day after end', { start_date: '13-08-2023', end_date: '12-08-2023' }, 'start_date "13-08-2023" is after end_date "12-08-2023"'],
      ['start after end (datetimes)', { start_date: '2023-08-12T10:00:00Z', end_date: '2023-08-12T09:59:59Z' }, 'is after end_date'],
      ['an unknown tz', { ...DAY_12, tz: 'Mars/Olympus_Mons' }, 'tz "Mars/Olympus_Mons" is not a known IANA time zone name'],
      ['a datetime without offset', { start_date: '2023-08-12T10:00:00', end_date: '14-08-2023' }, 'needs a UTC offset'],
      ['garbage', { start_date: 'yesterday', end_date: '14-08-2023' }, 'start_date "yesterday" is not a valid date; use DD-MM-YYYY'],
      ['an unknown query parameter', { ...DAY_12, bucket_size: 'day' }, 'property bucket_size should not exist'],
    ])('answers 400 with a clear message for %s', async (_name, query, message) => {
      const response = await statsResponse(id, query);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(JSON.stringify(response.body.message)).toContain(JSON.stringify(message).slice(1, -1));
    });

    // The end of 31-12-9999 is 10000-01-01, which reached PostgreSQL as "+010000-01-01T..." (a 500): bounds after
    // the end of year 9999 are taken as its last instant.
    it.each([
      ['the last day', { start_date: '31-12-9999', end_date: '31-12-9999' }, { start: '9999-12-31T00:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
      ['the last day at -12:00', { start_date: '31-12-9999', end_date: '31-12-9999', tz: 'Etc/GMT+12' }, { start: '9999-12-31T12:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
      ['1970 to 9999 at -12:00', { start_date: '1970-01-01', end_date: '9999-12-31', tz: 'Etc/GMT+12' }, { start: '1970-01-01T12:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
      ['a datetime end in year 10000', { start_date: '2023-08-12T00:00:00Z', end_date: '9999-12-31T23:59:59.999-12:00' }, { start: '2023-08-12T00:00:00.000Z', end: '9999-12-31T23:59:59.999Z' }],
    ])('answers 200 for %s, the end taken as the last instant of 9999', async (_name, query, period) => {
      const answer = await stats(id, query);
      expect(answer.period).toMatchObject(period);
      const bucketed = await stats(id, { ...query, start_date: '31-12-9999', bucket: 'hour' });
      expect(bucketed.buckets.length).toBeGreaterThan(0);
      const data = await t.http().get(`/meters/${id}/data`).query(query).expect(200);
      expect(data.body.period).toMatchObject(period);
    });

    it.each([
      ['year 0000', '0000-01-01'],
      ['year 0001', '01-01-0001'],
      ['a BC year', '-000001-01-01'],
      ['a six-digit year', '+010000-01-01'],
    ])('answers 400 for a start in %s', async (_name, start) => {
      const response = await statsResponse(id, { start_date: start, end_date: '14-08-2023' });
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/^start_date ".*"(: the year must be between 1970 and 9999| is not a valid date)/);
    });

    it.each([
      ['Europe/Kyiv'], ['Asia/Kolkata'], ['Asia/Kathmandu'], ['America/Nuuk'], ['Asia/Ho_Chi_Minh'], ['Pacific/Kanton'],
    ])('answers tz=%s with that name, not an old alias', async (tz) => {
      expect((await stats(id, { ...DAY_12, tz })).period.time_zone).toBe(tz);
    });

    it('answers 400 for a bound given twice', async () => {
      const response = await t
        .http()
        .get(`/meters/${id}/stats?start_date=12-08-2023&start_date=13-08-2023&end_date=14-08-2023`);
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('start_date must be given once');
    });

    it('answers 404 for an unknown meter', async () => {
      const response = await statsResponse('no-such-meter', DAY_12);
      expect(response.status).toBe(404);
      expect(response.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'meter "no-such-meter" does not exist',
      });
    });

    it('answers 400 for the JSON-body and /data forms too', async () => {
      const body = await t.http().get(`/meters/${id}/stats/`).send({ start_date: '12-08-2023' });
      expect(body.status).toBe(400);
      expect(body.body.message).toContain('end_date is required');
      const data = await t
        .http()
        .get(`/meters/${id}/data/`)
        .query({ start_date: '31-02-2023', end_date: '14-08-2023' });
      expect(data.status).toBe(400);
      expect(data.body.message).toContain('not a real calendar date');
    });
  });

  describe('answer shape', () => {
    it('answers an empty period with 200, zero readings and zero consumption', async () => {
      const id = await meterWith([
        ['2023-08-10T12:00:00Z', '100'],
        ['2023-08-14T12:00:00Z', '200'],
      ]);
      // Readings before and after but none in the 12th: no step is booked in it.
      const expected = {
        meter_id: id,
        period: { start: '2023-08-12T00:00:00.000Z', end: '2023-08-13T00:00:00.000Z', time_zone: 'UTC' },
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
      };
      expect(await stats(id, DAY_12)).toEqual(expected);
      const bare = await meterWith([]);
      expect(await stats(bare, DAY_12)).toEqual({ ...expected, meter_id: bare });
    });

    it('carries every figure as a JSON number with exact decimals', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '123400.123', '1.5'],
        ['2023-08-12T01:00:00Z', '123450.5', '3.75'],
        ['2023-08-12T04:00:00Z', '123456.789', '2.25'],
      ]);
      // (123450.5 - 123400.123) + (123456.789 - 123450.5) = 50.377 + 6.289 = 56.666 exactly (floating point
      // subtraction 123456.789 - 123400.123 would give 56.66599999999744). Current: (1.5 + 3.75 + 2.25) / 3 = 2.5,
      // min 1.5, max 3.75; over time 1.5 holds 1 h and 3.75 holds 3 h: (1.5 + 11.25) / 4 = 3.1875.
      // Power: 56.666 kWh over 4 h = 14.1665 kW.
      const response = await t.http().get(`/meters/${id}/stats/`).query(DAY_12).expect(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const body = response.body;
      expect(body.consumption_kwh).toBe(56.666);
      expect(body.current_a).toEqual({ avg: 2.5, time_weighted_avg: 3.1875, min: 1.5, max: 3.75 });
      expect(body.average_power_kw).toBeCloseTo(14.1665, 9);
      expect(body.consumption_from).toEqual({ taken_at: '2023-08-12T00:00:00.000Z', energy_kwh: 123400.123 });
      expect(body.consumption_to).toEqual({ taken_at: '2023-08-12T04:00:00.000Z', energy_kwh: 123456.789 });
      const numbers = [
        body.readings,
        body.consumption_kwh,
        body.average_power_kw,
        body.resets,
        body.misreads,
        body.current_a.avg,
        body.current_a.time_weighted_avg,
        body.current_a.min,
        body.current_a.max,
        body.consumption_from.energy_kwh,
        body.consumption_to.energy_kwh,
        body.coverage,
        body.gap_count,
      ];
      for (const value of numbers) {
        expect(typeof value).toBe('number');
        expect(Number.isFinite(value)).toBe(true);
      }
      // No figure is a quoted number anywhere in the raw text.
      expect(response.text).not.toMatch(/"-?\d+(\.\d+)?"/);
    });

    it('gives average_power_kw as consumption over the hours from consumption_from to consumption_to', async () => {
      const id = await meterWith([
        ['2023-08-11T22:00:00Z', '1000'],
        ['2023-08-12T01:00:00Z', '1003'],
        ['2023-08-12T04:00:00Z', '1012'],
      ]);
      // 1012 - 1000 = 12 kWh from 11T22:00 to 12T04:00, 6 h: 2 kW.
      expect(await stats(id, DAY_12)).toMatchObject({
        consumption_kwh: 12,
        average_power_kw: 2,
        consumption_from: { taken_at: '2023-08-11T22:00:00.000Z' },
        consumption_to: { taken_at: '2023-08-12T04:00:00.000Z' },
      });
      // One reading and nothing before it: no span, so no average (not NaN, not Infinity).
      const single = await meterWith([['2023-08-12T03:00:00Z', '5']]);
      expect(await stats(single, DAY_12)).toMatchObject({ readings: 1, consumption_kwh: 0, average_power_kw: null });
    });
  });

  describe('request forms', () => {
    it('answers the JSON body on GET and GET /data with the same statistics as the query form', async () => {
      const id = await meterWith([
        ['2023-08-11T23:00:00Z', '95', '4'],
        ['2023-08-12T00:00:00Z', '100', '6'],
        ['2023-08-12T01:00:00Z', '110', '8'],
        ['2023-08-12T02:00:00Z', '20', '0'],
        ['2023-08-12T03:00:00Z', '120', '10'],
      ]);
      const bounds = { start_date: '12-08-2023', end_date: '12-08-2023', tz: 'Europe/Berlin' };
      // Berlin's 12th is [11T22:00Z, 12T22:00Z): all five readings. 95 first; 5 + 10 + 0 (misread) + 10 = 25.
      const query = await stats(id, bounds);
      expect(query).toMatchObject({
        readings: 5,
        consumption_kwh: 25,
        misreads: 1,
        current_a: { avg: 5.6, min: 0, max: 10 },
        period: { time_zone: 'Europe/Berlin' },
      });
      const body = await t.http().get(`/meters/${id}/stats/`).send(bounds).expect(200);
      expect(body.body).toEqual(query);
      const dataQuery = await t.http().get(`/meters/${id}/data/`).query(bounds).expect(200);
      expect(dataQuery.body).toEqual(query);
      const dataBody = await t.http().get(`/meters/${id}/data`).send(bounds).expect(200);
      expect(dataBody.body).toEqual(query);
    });

    it('lets the query string win over the body', async () => {
      const id = await meterWith([
        ['2023-08-12T12:00:00Z', '1'],
        ['2023-08-13T12:00:00Z', '4'],
      ]);
      const response = await t
        .http()
        .get(`/meters/${id}/stats/`)
        .query({ start_date: '13-08-2023', end_date: '13-08-2023' })
        .send({ start_date: '12-08-2023', end_date: '12-08-2023' })
        .expect(200);
      expect(response.body).toMatchObject({ period: { start: '2023-08-13T00:00:00.000Z' }, consumption_kwh: 3 });
    });
  });
});
