import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { encodeCursor } from '../src/readings/history-cursor';
import { insertMeter, insertReadings } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Reading history (SPEC 7) end to end: cursor pages in both orders, the CSV form, and a year of one-minute readings
 * streamed with bounded memory.
 */
describe('Reading history GET /meters/{id}/readings (SPEC 7)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('history');
  });
  afterAll(async () => {
    await t?.close();
  });

  type Reading = readonly [string, string | number, (string | number)?];

  const meterWith = async (readings: readonly Reading[]): Promise<string> => {
    const { meter_id } = await insertMeter(t.dataSource);
    if (readings.length > 0) await insertReadings(t.dataSource, meter_id, readings);
    return meter_id;
  };

  /** n readings one minute apart from 2023-08-12T00:00Z, energy 1000 + i, current i % 7. */
  const minutes = (n: number): Reading[] =>
    Array.from({ length: n }, (_, i) => [new Date(Date.UTC(2023, 7, 12, 0, i)).toISOString(), 1000 + i, i % 7]);

  const history = (meterId: string, query: Record<string, string | number> = {}) =>
    t.http().get(`/meters/${meterId}/readings/`).query(query);

  interface Page {
    meter_id: string;
    order: string;
    limit: number;
    items: { taken_at: string; current_a: number; energy_kwh: number }[];
    next_cursor: string | null;
  }

  /** Follows next_cursor to the end; returns every page. */
  const allPages = async (meterId: string, query: Record<string, string | number>): Promise<Page[]> => {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = (await history(meterId, cursor ? { ...query, cursor } : query).expect(200)).body;
      pages.push(page);
      cursor = page.next_cursor;
      if (pages.length > 100) throw new Error('runaway pagination');
    } while (cursor !== null);
    return pages;
  };

  describe('JSON pages', () => {
    it('pages oldest first by cursor: every reading once, in order, the last page without a cursor', async () => {
      const readings = minutes(25);
      const id = await meterWith(readings);
      const pages = await allPages(id, { limit: 10 });
      expect(pages.map((page) => page.items.length)).toEqual([10, 10, 5]);
      expect(pages.map((page) => page.next_cursor === null)).toEqual([false, false, true]);
      expect(pages[0]).toMatchObject({ meter_id: id, order: 'asc', limit: 10 });
      const items = pages.flatMap((page) => page.items);
      expect(items).toEqual(
        readings.map(([takenAt, energy, current]) => ({ taken_at: takenAt, current_a: current, energy_kwh: energy })),
      );
    });

    it('pages newest first with order=desc; the cursor carries the order', async () => {
      const readings = minutes(7);
      const id = await meterWith(readings);
      const first = (await history(id, { order: 'desc', limit: 3 }).expect(200)).body as Page;
      expect(first.items.map((item) => item.energy_kwh)).toEqual([1006, 1005, 1004]);
      // The cursor alone continues newest first.
      const second = (await history(id, { limit: 3, cursor: first.next_cursor! }).expect(200)).body as Page;
      expect(second).toMatchObject({ order: 'desc' });
      expect(second.items.map((item) => item.energy_kwh)).toEqual([1003, 1002, 1001]);
      const pages = await allPages(id, { order: 'desc', limit: 3 });
      expect(pages.flatMap((page) => page.items.map((item) => item.energy_kwh))).toEqual([1006, 1005, 1004, 1003, 1002, 1001, 1000]);
    });

    it('answers an exact page with no next cursor, and a meter without readings with an empty page', async () => {
      const id = await meterWith(minutes(4));
      expect((await history(id, { limit: 4 }).expect(200)).body).toMatchObject({ next_cursor: null });
      const empty = await meterWith([]);
      expect((await history(empty).expect(200)).body).toEqual({ meter_id: empty, order: 'asc', limit: 100, items: [], next_cursor: null });
    });

    it('defaults to 100 readings a page and takes up to 10,000', async () => {
      const id = await meterWith(minutes(150));
      const page = (await history(id).expect(200)).body as Page;
      expect(page.items).toHaveLength(100);
      expect(page.next_cursor).not.toBeNull();
      expect((await history(id, { limit: 10000 }).expect(200)).body.items).toHaveLength(150);
    });

    it('keeps keys to the microsecond: readings within one millisecond are neither lost nor repeated', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00.000100Z', '1'],
        ['2023-08-12T00:00:00.000200Z', '2'],
        ['2023-08-12T00:00:00.000300Z', '3'],
      ]);
      const pages = await allPages(id, { limit: 1 });
      expect(pages.flatMap((page) => page.items.map((item) => item.energy_kwh))).toEqual([1, 2, 3]);
      const desc = await allPages(id, { limit: 1, order: 'desc' });
      expect(desc.flatMap((page) => page.items.map((item) => item.energy_kwh))).toEqual([3, 2, 1]);
    });

    it('filters [from, to) with instants, and with days in tz including the end day whole', async () => {
      const id = await meterWith([
        ['2023-08-11T21:59:59Z', '1'],
        ['2023-08-11T22:00:00Z', '2'], // Berlin 12th 00:00
        ['2023-08-12T10:00:00Z', '3'],
        ['2023-08-12T21:59:59Z', '4'], // Berlin 12th 23:59:59
        ['2023-08-12T22:00:00Z', '5'],
      ]);
      const energies = async (query: Record<string, string>) =>
        ((await history(id, query).expect(200)).body as Page).items.map((item) => item.energy_kwh);
      expect(await energies({ from: '2023-08-11T22:00:00Z', to: '2023-08-12T21:59:59Z' })).toEqual([2, 3]);
      expect(await energies({ from: '12-08-2023', to: '12-08-2023', tz: 'Europe/Berlin' })).toEqual([2, 3, 4]);
      expect(await energies({ from: '2023-08-12', to: '2023-08-12' })).toEqual([3, 4, 5]);
      expect(await energies({ from: '2023-08-12T10:00:00+00:00' })).toEqual([3, 4, 5]);
      expect(await energies({ to: '2023-08-12T10:00:00Z', order: 'desc' })).toEqual([2, 1]);
      expect(await energies({ from: '2023-08-12T10:00:00Z', to: '2023-08-12T10:00:00Z' })).toEqual([]);
    });

    it('carries numbers as JSON numbers with exact decimals', async () => {
      const id = await meterWith([['2023-08-12T00:00:00Z', '123456.789', '3.75']]);
      const response = await history(id).expect(200).expect('Content-Type', /application\/json/);
      expect(response.body.items).toEqual([{ taken_at: '2023-08-12T00:00:00.000Z', current_a: 3.75, energy_kwh: 123456.789 }]);
      expect(response.text).not.toMatch(/"-?\d+(\.\d+)?"/);
    });
  });

  describe('errors', () => {
    let id: string;
    let cursor: string;
    beforeAll(async () => {
      id = await meterWith(minutes(5));
      cursor = (await history(id, { limit: 2 }).expect(200)).body.next_cursor;
    });

    it.each<[string, Record<string, string | number>, string]>([
      ['limit 0', { limit: 0 }, 'limit must be an integer from 1 to 10000'],
      ['limit 10,001', { limit: 10001 }, 'limit must be an integer from 1 to 10000'],
      ['limit abc', { limit: 'abc' }, 'limit must be an integer from 1 to 10000'],
      ['limit 1.5', { limit: '1.5' }, 'limit must be an integer from 1 to 10000'],
      ['an unknown order', { order: 'newest' }, 'order must be one of asc, desc'],
      ['an unknown format', { format: 'xml' }, 'format must be one of json, csv'],
      ['a bad from', { from: '31-02-2023' }, 'from "31-02-2023" is not a real calendar date'],
      ['an empty to', { to: '' }, 'to is empty'],
      ['a datetime without offset', { from: '2023-08-12T10:00:00' }, 'needs a UTC offset'],
      ['from after to', { from: '2023-08-13T00:00:00Z', to: '2023-08-12T00:00:00Z' }, 'from (2023-08-13T00:00:00.000Z) is after to'],
      ['an unknown tz', { from: '12-08-2023', tz: 'Mars/Olympus_Mons' }, 'tz "Mars/Olympus_Mons" is not a known IANA time zone name'],
      ['an unknown parameter', { page: 2 }, 'property page should not exist'],
      ['a cursor that is not one', { cursor: 'not-a-cursor' }, 'cursor is not valid'],
    ])('answers 400 for %s', async (_name, query, message) => {
      const response = await history(id, query);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(JSON.stringify(response.body.message)).toContain(JSON.stringify(message).slice(1, -1));
    });

    it('answers 400 for a tampered cursor, one of another meter, and one for the other order', async () => {
      const tampered = cursor.slice(0, 10) + (cursor[10] === 'A' ? 'B' : 'A') + cursor.slice(11);
      const altered = await history(id, { cursor: tampered });
      expect(altered.status).toBe(400);
      expect(altered.body.message).toMatch(/^cursor is not valid/);

      const other = await meterWith(minutes(3));
      const foreign = await history(other, { cursor });
      expect(foreign.status).toBe(400);
      expect(foreign.body.message).toContain('issued for another meter');

      const reversed = await history(id, { cursor, order: 'desc' });
      expect(reversed.status).toBe(400);
      expect(reversed.body.message).toContain('cursor continues order=asc, not order=desc');
    });

    it.each([
      ['to the last day of 9999', { to: '9999-12-31' }],
      ['to 9999-12-31 at -12:00', { to: '9999-12-31T23:59:59.999-12:00' }],
      ['from the start of 1970 to 9999', { from: '1970-01-01T00:00:00+14:00', to: '31-12-9999', tz: 'Etc/GMT+12' }],
    ])('answers 200 with every reading %s (JSON and CSV)', async (_name, query) => {
      const page = (await history(id, query).expect(200)).body as Page;
      expect(page.items).toHaveLength(5);
      const csv = await history(id, { ...query, format: 'csv' }).expect(200);
      expect(csv.text.trim().split('\n')).toHaveLength(6);
    });

    it('answers 400 for a cursor whose position is in year 0 (PostgreSQL has none)', async () => {
      const forged = encodeCursor(id, { order: 'asc', key: '0000-01-01T00:00:00.000000Z' });
      const response = await history(id, { cursor: forged });
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/^cursor is not valid/);
    });

    it('answers 400 for a NUL character in tz or a cursor', async () => {
      expect((await history(id, { from: '12-08-2023', tz: 'UTC\u0000' })).status).toBe(400);
      expect((await history(id, { cursor: `${cursor}\u0000` })).status).toBe(400);
    });

    it('answers 400 for a parameter given twice', async () => {
      const response = await t.http().get(`/meters/${id}/readings?cursor=${cursor}&cursor=${cursor}`);
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('must be given once');
    });

    it('answers 404 for an unknown meter (JSON and CSV) and 400 for a bad meter id', async () => {
      const missing = await history('no-such-meter');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'meter "no-such-meter" does not exist' });
      const missingCsv = await history('no-such-meter', { format: 'csv' });
      expect(missingCsv.status).toBe(404);
      expect(missingCsv.headers['content-type']).toMatch(/application\/json/);
      expect((await history('bad id!')).status).toBe(400);
    });
  });

  describe('CSV', () => {
    const csvOf = async (meterId: string, query: Record<string, string | number>, accept?: string) => {
      const request = history(meterId, query);
      if (accept) request.set('Accept', accept);
      const response = await request.buffer(true).parse((res, done) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done(null, text));
      });
      return { status: response.status, type: response.headers['content-type'], text: response.body as string };
    };

    it('answers Accept: text/csv and format=csv with the same rows as JSON, under a header', async () => {
      const id = await meterWith([
        ['2023-08-12T00:00:00Z', '44325', '37'],
        ['2023-08-12T00:01:00Z', '44325.61', '36.5'],
        ['2023-08-12T00:02:00Z', '12', '0'],
      ]);
      const expected =
        'meter_id,taken_at,current_a,energy_kwh\n' +
        `${id},2023-08-12T00:00:00.000Z,37,44325\n` +
        `${id},2023-08-12T00:01:00.000Z,36.5,44325.61\n` +
        `${id},2023-08-12T00:02:00.000Z,0,12\n`;
      const byAccept = await csvOf(id, {}, 'text/csv');
      expect(byAccept).toEqual({ status: 200, type: 'text/csv; charset=utf-8', text: expected });
      expect(await csvOf(id, { format: 'csv' })).toEqual(byAccept);
      // format wins over Accept.
      const json = await history(id, { format: 'json' }).set('Accept', 'text/csv').expect(200);
      expect(json.body.items).toHaveLength(3);
      // The same rows as the JSON form.
      const rows = expected.trim().split('\n').slice(1).map((line) => line.split(','));
      expect(rows.map(([, takenAt, current, energy]) => ({ taken_at: takenAt, current_a: Number(current), energy_kwh: Number(energy) }))).toEqual(json.body.items);
    });

    it('honours from, to, order, limit and cursor', async () => {
      const id = await meterWith(minutes(6));
      const lines = async (query: Record<string, string | number>) =>
        (await csvOf(id, { ...query, format: 'csv' })).text.trim().split('\n').slice(1).map((line) => Number(line.split(',')[3]));
      expect(await lines({})).toEqual([1000, 1001, 1002, 1003, 1004, 1005]);
      expect(await lines({ order: 'desc', limit: 2 })).toEqual([1005, 1004]);
      expect(await lines({ from: '2023-08-12T00:02:00Z', to: '2023-08-12T00:04:00Z' })).toEqual([1002, 1003]);
      const cursor = (await history(id, { limit: 2 }).expect(200)).body.next_cursor;
      expect(await lines({ cursor })).toEqual([1002, 1003, 1004, 1005]);
    });

    it('answers the header alone when there is no reading', async () => {
      const id = await meterWith([]);
      expect((await csvOf(id, { format: 'csv' })).text).toBe('meter_id,taken_at,current_a,energy_kwh\n');
    });
  });

  describe('a year of one-minute readings as CSV', () => {
    const YEAR_MINUTES = 525_600;
    /**
     * The download runs in a child process, so that the memory measured here is the service's alone. It checks the
     * rows line by line without keeping them: count, strictly increasing taken_at, first and last row.
     */
    const CLIENT = `
      const http = require('node:http');
      http.get(process.argv[1], (response) => {
        let rows = -1, bytes = 0, partial = '', first = '', last = '', previous = '', ordered = true;
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          bytes += Buffer.byteLength(chunk);
          const lines = (partial + chunk).split('\\n');
          partial = lines.pop();
          for (const line of lines) {
            rows++;
            if (rows === 0) continue;
            if (rows === 1) first = line;
            const takenAt = line.split(',')[1];
            if (takenAt <= previous) ordered = false;
            previous = takenAt;
            last = line;
          }
        });
        response.on('end', () => process.stdout.write(JSON.stringify({
          status: response.statusCode, type: response.headers['content-type'], rows, bytes, first, last, ordered, partial,
        })));
      }).on('error', (error) => { console.error(error); process.exit(1); });
    `;
    let server: Server | undefined;

    afterAll(async () => {
      await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    });

    it(`streams ${YEAR_MINUTES.toLocaleString('en')} rows in order with bounded memory (peak RSS delta printed)`, async () => {
      const { meter_id: id } = await insertMeter(t.dataSource);
      await t.dataSource.query(
        `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
         SELECT $1, timestamptz '2023-01-01T00:00:00Z' + i * interval '1 minute', i % 50, 1000 + i * 0.25
           FROM generate_series(0, $2 - 1) AS i`,
        [id, YEAR_MINUTES],
      );
      server = t.app.getHttpServer() as Server;
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
      const { port } = server.address() as AddressInfo;

      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 10);
      const startedAt = Date.now();
      let output = '';
      try {
        const client = spawn(process.execPath, ['-e', CLIENT, `http://127.0.0.1:${port}/meters/${id}/readings?format=csv`], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        client.stdout.setEncoding('utf8');
        client.stdout.on('data', (chunk: string) => (output += chunk));
        const [code] = (await once(client, 'close')) as [number | null];
        expect(code).toBe(0);
      } finally {
        clearInterval(sampler);
      }
      const seconds = (Date.now() - startedAt) / 1000;
      const result = JSON.parse(output);
      const peakDeltaMiB = (peak - baseline) / 1024 / 1024;
      console.log(
        `[history CSV] ${result.rows} rows, ${(result.bytes / 1024 / 1024).toFixed(1)} MiB of CSV in ${seconds.toFixed(1)} s; ` +
          `service RSS ${(baseline / 1024 / 1024).toFixed(0)} MiB before, peak delta ${peakDeltaMiB.toFixed(1)} MiB ` +
          `(load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores)`,
      );
      expect(result).toMatchObject({ status: 200, type: 'text/csv; charset=utf-8', rows: YEAR_MINUTES, ordered: true, partial: '' });
      expect(result.first).toBe(`${id},2023-01-01T00:00:00.000Z,0,1000`);
      // The last minute of 2023 is row 525,599: current 525,599 % 50 = 49, energy 1000 + 525,599 * 0.25.
      expect(result.last).toBe(`${id},2023-12-31T23:59:00.000Z,49,132399.75`);
      // Read in one statement and formatted whole, the same rows cost 258 MiB of RSS (measured here, without HTTP).
      // Streamed, the peak is the garbage of a few 10,000-row pages before the collector runs: measured 27-137 MiB
      // here, 13 MiB for 100,000 rows and no more for 1,000,000 than for 525,600.
      expect(peakDeltaMiB).toBeLessThan(200);
    }, 300_000);
  });
});
