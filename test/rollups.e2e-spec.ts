import fc from 'fast-check';
import { formatMicro } from '../src/common/decimal';
import { NewReading, ReadingsRepository } from '../src/readings/readings.repository';
import { RollupRefresher } from '../src/readings/rollup-refresher';
import { StatsService } from '../src/readings/stats.service';
import { insertMeter } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Rollups (issue #4 item 6) against the raw path, as a property on a real database: generated histories with
 * replacements, misreads, equal readings, irregular polls, long gaps and readings exactly on hour and day edges,
 * written through the real write path in shuffled batches (late and out-of-order arrival, repeats), then for
 * random periods, time zones and bucket sizes the statistics from rollups must equal those from raw readings.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Saturday 25-03-2023 20:00 UTC: the histories cross the Europe/Berlin spring-forward night and UTC midnights. */
const T0 = Date.UTC(2023, 2, 25, 20);
const RUNS = Number(process.env.ROLLUP_PROPERTY_RUNS ?? 300);

type Event = { kind: 'step'; kwh: bigint } | { kind: 'replace'; to: bigint } | { kind: 'misread'; below: bigint };

/** Dense histories (mostly 1-minute polls) or sparse ones (readings hours apart, a late one lands between). */
const readingArb = (sparse: boolean) =>
  fc.record({
    gap: sparse
      ? fc.oneof(fc.constantFrom(HOUR, 2 * HOUR, 30 * MINUTE), fc.integer({ min: 1, max: 3 * HOUR }))
      : fc.oneof(
          { weight: 5, arbitrary: fc.constant(MINUTE) },
          { weight: 2, arbitrary: fc.integer({ min: 1, max: 150_000 }) },
          { weight: 2, arbitrary: fc.constantFrom(15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR) },
          { weight: 2, arbitrary: fc.integer({ min: 150_001, max: 8 * HOUR }) },
        ),
    event: fc.oneof(
      { weight: 8, arbitrary: fc.bigInt({ min: 0n, max: 5_000_000n }).map((kwh): Event => ({ kind: 'step', kwh })) },
      { weight: 1, arbitrary: fc.constant<Event>({ kind: 'step', kwh: 0n }) },
      { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 3_000_000n }).map((to): Event => ({ kind: 'replace', to })) },
      {
        weight: sparse ? 5 : 2,
        arbitrary: fc.bigInt({ min: 1n, max: 2_000_000_000n }).map((below): Event => ({ kind: 'misread', below })),
      },
    ),
    current: fc.bigInt({ min: 0n, max: 50_000_000n }),
  });

interface Case {
  readings: { at: number; energy: bigint; current: bigint }[];
  /** Arrival order: a permutation, cut into batches; some readings arrive twice. */
  order: number[];
  batches: number;
  /** After which batches the rollups are refreshed (as the background refresher would), before the next arrive. */
  refreshes: boolean[];
  repeats: number[];
  queries: { start: number; end: number; dateOnly: boolean; bucket?: 'hour' | 'day' | 'month'; tz: string }[];
}

const caseArb: fc.Arbitrary<Case> = fc
  .boolean()
  .chain((sparse) =>
    fc.tuple(
      fc.bigInt({ min: 0n, max: 50_000_000_000n }),
      fc.array(readingArb(sparse), { minLength: 0, maxLength: sparse ? 12 : 60 }),
    ),
  )
  .map(([initial, events]) => {
    let at = T0 - 3 * HOUR;
    let energy = initial;
    return events.map(({ gap, event, current }) => {
      at += gap;
      if (event.kind === 'step') energy += event.kwh;
      if (event.kind === 'replace') energy = event.to;
      const value = event.kind === 'misread' ? (energy > event.below ? energy - event.below : 0n) : energy;
      return { at, energy: value, current };
    });
  })
  .chain((readings) =>
    fc.record({
      readings: fc.constant(readings),
      order: fc.shuffledSubarray([...readings.keys()], { minLength: readings.length, maxLength: readings.length }),
      batches: fc.integer({ min: 1, max: 6 }),
      refreshes: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
      repeats: fc.array(fc.nat({ max: Math.max(0, readings.length - 1) }), { maxLength: readings.length > 0 ? 3 : 0 }),
      queries: fc.array(queryArb(readings.map((r) => r.at)), { minLength: 1, maxLength: 4 }),
    }),
  );

/** Bounds on readings, a millisecond off them, on hour edges, or anywhere; date-only days or instants. */
function queryArb(times: number[]) {
  const instant = fc.oneof(
    fc.integer({ min: T0 - 6 * HOUR, max: T0 + 5 * 24 * HOUR }),
    fc.integer({ min: -10, max: 120 }).map((h) => T0 + h * HOUR),
    ...(times.length > 0 ? [fc.tuple(fc.constantFrom(...times), fc.constantFrom(-1, 0, 1)).map(([t, d]) => t + d)] : []),
  );
  return fc.record({
    start: instant,
    end: instant,
    dateOnly: fc.boolean(),
    bucket: fc.constantFrom(undefined, 'hour', 'day', 'month'),
    tz: fc.constantFrom('UTC', 'Europe/Berlin', 'Asia/Kolkata'),
  }).map((q) => ({ ...q, start: Math.min(q.start, q.end), end: Math.max(q.start, q.end) }));
}

function dayOf(at: number): string {
  const d = new Date(at);
  return `${String(d.getUTCDate()).padStart(2, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${d.getUTCFullYear()}`;
}

describe('Rollups answer statistics exactly as raw readings do (issue #4 item 6)', () => {
  let t: TestApp;
  let stats: StatsService;
  let repository: ReadingsRepository;
  let refresher: RollupRefresher;

  beforeAll(async () => {
    t = await createTestApp('rollups');
    stats = t.app.get(StatsService);
    repository = t.app.get(ReadingsRepository);
    refresher = t.app.get(RollupRefresher);
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`rollups + raw edges == raw readings, for ${RUNS} generated histories written out of order`, async () => {
    let rollupRows = 0;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { meter_id: meterId } = await insertMeter(t.dataSource);
        const toNew = (i: number): NewReading => ({
          meterId,
          takenAt: new Date(c.readings[i].at),
          currentA: formatMicro(c.readings[i].current),
          energyKwh: formatMicro(c.readings[i].energy),
        });
        const arrivals = [...c.order, ...c.repeats];
        const size = Math.ceil(arrivals.length / c.batches);
        for (let k = 0, batch = 0; k < arrivals.length; k += size, batch++) {
          await t.dataSource.transaction((manager) => repository.insertBatch(arrivals.slice(k, k + size).map(toNew), manager));
          if (c.refreshes[batch]) await refresher.refreshAll();
        }
        for (const q of c.queries) {
          const request = {
            startDate: q.dateOnly ? dayOf(q.start) : new Date(q.start).toISOString(),
            endDate: q.dateOnly ? dayOf(q.end) : new Date(q.end).toISOString(),
            timeZone: q.tz,
            bucket: q.bucket,
          };
          const fromRaw = await stats.forPeriod(meterId, request, 'raw');
          const fromRollups = await stats.forPeriod(meterId, request, 'rollups');
          expect(fromRollups).toEqual(fromRaw);
          compared++;
        }
        const [{ n }] = await t.dataSource.query('SELECT count(*)::int AS n FROM readings_hourly WHERE meter_id = $1', [meterId]);
        rollupRows += n;
      }),
      { numRuns: RUNS },
    );
    // The rollup path was taken, not skipped: rows exist, and queries were compared.
    expect(rollupRows).toBeGreaterThan(RUNS);
    expect(compared).toBeGreaterThanOrEqual(RUNS);
  }, 600_000);

  it('a rebuild from whole histories (bulk load, migration) gives the very rows the refreshes left', async () => {
    await refresher.refreshAll();
    const snapshot = async () =>
      Promise.all(
        ['readings_hourly', 'readings_daily'].map((table) =>
          t.dataSource.query(`SELECT * FROM ${table} ORDER BY meter_id, bucket_start`),
        ),
      );
    const refreshed = await snapshot();
    expect(refreshed[0].length).toBeGreaterThan(RUNS);
    await t.dataSource.query('SELECT readings_rollup_rebuild()');
    expect(await snapshot()).toEqual(refreshed);
  });

  it('writes only mark hours dirty; a refresh computes them; a meter deleted takes its rollups with it', async () => {
    const { meter_id: meterId } = await insertMeter(t.dataSource);
    await repository.insertBatch([
      { meterId, takenAt: new Date(T0), currentA: '1', energyKwh: '10' },
      { meterId, takenAt: new Date(T0 + 25 * HOUR), currentA: '1', energyKwh: '12' },
    ]);
    const rows = async (table: string) =>
      (await t.dataSource.query(`SELECT count(*)::int AS n FROM ${table} WHERE meter_id = $1`, [meterId]))[0].n;
    expect(await rows('rollup_dirty')).toBe(2);
    expect(await repository.refreshRollups(meterId)).toBe(2);
    expect([await rows('readings_hourly'), await rows('readings_daily'), await rows('rollup_dirty')]).toEqual([2, 2, 0]);
    // Also the rollups of hours whose readings are gone already (retention): at once, not at the next refresh.
    await t.dataSource.query('ALTER TABLE readings DISABLE TRIGGER readings_rollup_delete');
    await t.dataSource.query('DELETE FROM readings WHERE meter_id = $1', [meterId]);
    await t.dataSource.query('ALTER TABLE readings ENABLE TRIGGER readings_rollup_delete');
    await t.http().delete(`/meters/${meterId}/`).expect(204);
    expect([await rows('readings_hourly'), await rows('readings_daily'), await rows('rollup_dirty')]).toEqual([0, 0, 0]);
  });

  it('a rollup computed with another gap threshold is not used: the answer comes from raw readings', async () => {
    const { meter_id: meterId } = await insertMeter(t.dataSource);
    await repository.insertBatch([
      { meterId, takenAt: new Date(T0), currentA: '1', energyKwh: '10' },
      { meterId, takenAt: new Date(T0 + 10 * MINUTE), currentA: '1', energyKwh: '12' },
    ]);
    for (const table of ['readings_hourly', 'readings_daily']) {
      await t.dataSource.query(`UPDATE ${table} SET max_gap_ms = 1, consumption_kwh = 999 WHERE meter_id = $1`, [meterId]);
    }
    const request = { startDate: dayOf(T0), endDate: dayOf(T0) };
    const answer = await stats.forPeriod(meterId, request);
    expect(answer).toMatchObject({ consumption_kwh: 2, gap_count: 1 });
    expect(answer).toEqual(await stats.forPeriod(meterId, request, 'raw'));
  });
});
