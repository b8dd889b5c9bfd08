import { createServer, Server } from 'node:net';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { insertMeter } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

/**
 * `length` contiguous ports free on 127.0.0.1 right now, searched in 4000-4999 (below the benchmark's 9000-65000
 * and away from the kernel's ephemeral range). Each port is bound while the block is gathered, then released.
 */
async function freeBlock(length: number, from = 4000, to = 4999): Promise<number> {
  const tryBind = (port: number) =>
    new Promise<Server | null>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(null));
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
    });
  const release = (servers: Server[]) => Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  let held: Server[] = [];
  for (let port = from; port <= to; port++) {
    const server = await tryBind(port);
    if (!server) {
      await release(held);
      held = [];
      continue;
    }
    held.push(server);
    if (held.length === length) {
      await release(held);
      return port - length + 1;
    }
  }
  await release(held);
  throw new Error(`no ${length} contiguous free ports in ${from}-${to}`);
}

interface Job {
  id: number;
  status: 'running' | 'done' | 'failed';
  address: string;
  port_from: number;
  port_to: number;
  probed: number;
  total: number;
  found: { meter_id: string; port: number }[];
  already_known: { port: number; meter_id: string | null; reason: string }[];
  not_a_meter_count: number;
  not_a_meter: { port: number; reason: string }[];
  finished_at: string | null;
}

describe('Discovery scan POST /discovery (SPEC 2, bulk)', () => {
  const SERVED = 52; // ports with a simulated meter
  const CLOSED = 4; // ports after them with nothing listening
  let t: TestApp;
  let sim: Simulator;
  let first: number;

  beforeAll(async () => {
    first = await freeBlock(SERVED + CLOSED);
    const ports = Array.from({ length: SERVED }, (_, i) => first + i);
    // Reported ids differ from the ports: the scan must register what the meter says it is.
    sim = await startSimulator({ ports, idOf: (port) => `disc-${port}` });
    expect(sim.failedPorts).toEqual([]);
    t = await createTestApp('discovery', { POLL_TIMEOUT_MS: '500' });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  /** GET /discovery/{id} until the scan is no longer running (bounded). */
  const untilDone = async (id: number, timeoutMs = 10_000): Promise<Job> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = (await t.http().get(`/discovery/${id}`).expect(200)).body as Job;
      if (job.status !== 'running') return job;
      if (Date.now() > deadline) throw new Error(`discovery ${id} still running after ${timeoutMs} ms`);
      await new Promise((wake) => setTimeout(wake, 50));
    }
  };

  it('registers the healthy meters under their reported ids, lists the known one and every port that is not a meter', async () => {
    const garbage = first + 3;
    const hang = first + 7;
    const known = first + 10;
    const refusing = first + 20;
    sim.setFault(garbage, { kind: 'garbage' });
    sim.setFault(hang, { kind: 'hang' });
    sim.setFault(refusing, { kind: 'refuse' });
    await sim.settle();
    await insertMeter(t.dataSource, { meter_id: 'registered-before', port: known });
    const last = first + SERVED + CLOSED - 1;
    const closed = [refusing, ...Array.from({ length: CLOSED }, (_, i) => first + SERVED + i)];

    const started = await t
      .http()
      .post('/discovery')
      .send({ address: '127.0.0.1', port_from: first, port_to: last })
      .expect(202);
    expect(started.body).toMatchObject({
      id: expect.any(Number),
      status: 'running',
      address: '127.0.0.1',
      port_from: first,
      port_to: last,
      total: SERVED + CLOSED,
      finished_at: null,
    });

    // One scan at a time: the hanging meter keeps this one running for the whole deadline.
    const second = await t
      .http()
      .post('/discovery')
      .send({ address: '127.0.0.1', port_from: first, port_to: first })
      .expect(409);
    expect(second.body).toEqual({ statusCode: 409, error: 'Conflict', message: expect.any(String) });

    const job = await untilDone(started.body.id);
    expect(job.status).toBe('done');
    expect(job.probed).toBe(SERVED + CLOSED);
    expect(job.finished_at).toEqual(expect.any(String));

    const healthy = Array.from({ length: SERVED }, (_, i) => first + i).filter(
      (port) => ![garbage, hang, known, refusing].includes(port),
    );
    expect(job.found).toEqual(healthy.map((port) => ({ meter_id: `disc-${port}`, port })));
    expect(job.already_known).toEqual([{ port: known, meter_id: 'registered-before', reason: expect.any(String) }]);

    const notAMeter = new Map(job.not_a_meter.map((entry) => [entry.port, entry.reason]));
    expect([...notAMeter.keys()].sort((a, b) => a - b)).toEqual([garbage, hang, ...closed].sort((a, b) => a - b));
    expect(job.not_a_meter_count).toBe(2 + closed.length);
    expect(notAMeter.get(garbage)).toContain('bad-payload');
    expect(notAMeter.get(hang)).toContain('timeout');
    for (const port of closed) expect(notAMeter.get(port)).toContain('refused');

    for (const port of healthy) {
      const meter = (await t.http().get(`/meters/disc-${port}`).expect(200)).body;
      expect(meter).toMatchObject({ meter_id: `disc-${port}`, address: '127.0.0.1', port, enabled: true });
    }
    for (const port of [garbage, hang]) await t.http().get(`/meters/disc-${port}`).expect(404);
    await t.http().get(`/meters/disc-${known}`).expect(404);
    const list = (await t.http().get('/meters?limit=1').expect(200)).body;
    expect(list.total).toBe(healthy.length + 1);

    // A finished scan frees the slot; a rescan finds every healthy port already known.
    const again = await t
      .http()
      .post('/discovery')
      .send({ address: '127.0.0.1', port_from: healthy[0], port_to: healthy[1] })
      .expect(202);
    const rescan = await untilDone(again.body.id);
    expect(rescan.found).toEqual([]);
    expect(rescan.already_known.map((k) => k.port)).toEqual([healthy[0], healthy[1]]);
  });

  it.each([
    ['port_from above port_to', { address: '127.0.0.1', port_from: 4100, port_to: 4099 }, 'port_from'],
    ['an address outside the allowed networks', { address: '8.8.8.8', port_from: 80, port_to: 80 }, 'outside'],
    ['a link-local address', { address: '169.254.169.254', port_from: 80, port_to: 80 }, 'link-local'],
    ['a port given as a string', { address: '127.0.0.1', port_from: '80', port_to: 80 }, 'port_from'],
    ['a hostname', { address: 'localhost', port_from: 80, port_to: 80 }, 'literal'],
    ['an address that is a number', { address: 127, port_from: 80, port_to: 80 }, 'address must be a string'],
    ['an address with a NUL character', { address: '127.0.0.1\u0000', port_from: 80, port_to: 80 }, 'literal'],
  ])('answers 400 for %s and starts nothing', async (_name, body, reason) => {
    const before = (await t.http().get('/discovery').expect(200)).body.length;
    const response = await t.http().post('/discovery').send(body).expect(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.anything() });
    expect(JSON.stringify(response.body.message)).toContain(reason);
    expect((await t.http().get('/discovery').expect(200)).body.length).toBe(before);
  });

  it('answers 404 for an unknown scan and 400 for a non-numeric id', async () => {
    const missing = await t.http().get('/discovery/999999').expect(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'Not Found', message: expect.any(String) });
    const bad = await t.http().get('/discovery/abc').expect(400);
    expect(bad.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.any(String) });
  });
});
