import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { countReadings, insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';
import { sample } from './support/prometheus';


/** The sample's value, failing with the series name when it is missing. */
function value(text: string, series: string): number {
  const found = sample(text, series);
  if (found === undefined) throw new Error(`no sample ${series} in /metrics`);
  return found;
}

describe('Prometheus metrics GET /metrics (SPEC 8)', () => {
  let t: TestApp;
  let sim: Simulator;
  let healthy: number;
  let refusing: number;

  beforeAll(async () => {
    [healthy, refusing] = await freePorts(2);
    sim = await startSimulator({ ports: [healthy, refusing] });
    expect(sim.failedPorts).toEqual([]);
    sim.setFault(refusing, { kind: 'refuse' });
    await sim.settle();
    t = await createTestApp('metrics');
    await insertMeter(t.dataSource, { meter_id: String(healthy), port: healthy });
    await insertMeter(t.dataSource, { meter_id: String(refusing), port: refusing });
    await insertMeter(t.dataSource, { meter_id: 'never-polled', port: 4999, enabled: false });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  const scrape = async () => {
    const response = await t.http().get('/metrics').expect(200);
    // Prometheus' text format: text/plain with version=0.0.4 (parameter order is free).
    const [type, ...params] = String(response.headers['content-type']).split(';').map((part) => part.trim());
    expect(type).toBe('text/plain');
    expect(params).toContain('version=0.0.4');
    return response.text;
  };

  it('counts polls by outcome, durations, meters by state and readings written after a cycle', async () => {
    const before = await scrape();
    expect(sample(before, 'meter_polls_total{outcome="ok"}') ?? 0).toBe(0);
    expect(value(before, 'meters{state="unknown"}')).toBe(3);

    const summary = await t.polling.runCycle();
    expect(summary).toMatchObject({ meters: 2, ok: 1, failed: 1 });
    const text = await scrape();

    expect(text).toContain('# TYPE meter_polls_total counter');
    expect(value(text, 'meter_polls_total{outcome="ok"}')).toBe(1);
    expect(value(text, 'meter_polls_total{outcome="refused"}')).toBe(1);

    expect(text).toContain('# TYPE meter_poll_duration_seconds histogram');
    expect(value(text, 'meter_poll_duration_seconds_count')).toBe(2);
    expect(value(text, 'meter_poll_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(value(text, 'meter_poll_duration_seconds_sum')).toBeGreaterThan(0);

    expect(text).toContain('# TYPE polling_cycle_duration_seconds histogram');
    expect(value(text, 'polling_cycle_duration_seconds_count')).toBe(1);
    expect(value(text, 'polling_cycle_duration_seconds_sum')).toBeCloseTo(summary.durationMs / 1000, 3);

    // meters by state agree with the registry's own filter
    for (const state of ['up', 'down', 'unknown'] as const) {
      const listed = (await t.http().get(`/meters?state=${state}&limit=1`).expect(200)).body.total;
      expect(value(text, `meters{state="${state}"}`)).toBe(listed);
    }
    expect(value(text, 'meters{state="up"}')).toBe(1);
    expect(value(text, 'meters{state="down"}')).toBe(1);

    expect(value(text, 'readings_written_total')).toBe(await countReadings(t.dataSource));
    expect(value(text, 'readings_written_total')).toBe(1);
    expect(value(text, 'reading_write_failures_total')).toBe(0);
    expect(value(text, 'reading_write_buffer_results')).toBe(0);

    // A live read adds to the same counters.
    await t.http().get(`/meters/${healthy}/data`).expect(200);
    const after = await scrape();
    expect(value(after, 'meter_polls_total{outcome="ok"}')).toBe(2);
    expect(value(after, 'readings_written_total')).toBe(await countReadings(t.dataSource));
    expect(value(after, 'readings_written_total')).toBe(2);
  });

  it('counts a tick skipped because the previous cycle was still running', async () => {
    const before = value(await scrape(), 'polling_skipped_ticks_total');
    const cycles = t.polling.stats.cycles;
    await t.releaseClaims();
    t.polling.tick(); // starts a cycle
    t.polling.tick(); // finds it running: skipped
    const deadline = Date.now() + 5000;
    while (t.polling.stats.cycles === cycles) {
      if (Date.now() > deadline) throw new Error('the ticked cycle never finished');
      await new Promise((wake) => setTimeout(wake, 10));
    }
    const text = await scrape();
    expect(text).toContain('# TYPE polling_skipped_ticks_total counter');
    expect(value(text, 'polling_skipped_ticks_total')).toBe(before + 1);
    expect(value(text, 'polling_cycle_duration_seconds_count')).toBe(2);
  });

  it('counts failed writes and the results left in the buffer while the database is away', async () => {
    // Make the next batch fail: the readings table is renamed away for the length of one flush.
    await t.releaseClaims();
    await t.dataSource.query('ALTER TABLE readings RENAME TO readings_away');
    try {
      await t.polling.runCycle();
      const text = await scrape();
      expect(value(text, 'reading_write_failures_total')).toBeGreaterThanOrEqual(1);
      expect(value(text, 'reading_write_buffer_results')).toBe(2);
    } finally {
      await t.dataSource.query('ALTER TABLE readings_away RENAME TO readings');
    }
    await t.writer.flush();
    const text = await scrape();
    expect(value(text, 'reading_write_buffer_results')).toBe(0);
    expect(value(text, 'readings_written_total')).toBe(await countReadings(t.dataSource));
  });
});
