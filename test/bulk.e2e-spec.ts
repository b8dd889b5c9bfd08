import { deleteAllMeters, insertMeter } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

interface BulkResult {
  created_count: number;
  refused_count: number;
  created: string[];
  refused: { row: number; meter_id: string | null; reasons: string[] }[];
}

/** The refused entry of one row, or a failure naming the row. */
function refusedRow(result: BulkResult, row: number) {
  const entry = result.refused.find((r) => r.row === row);
  if (!entry) throw new Error(`row ${row} was not refused: ${JSON.stringify(result)}`);
  return entry;
}

describe('Bulk registration POST /meters/bulk (SPEC 2)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('bulk');
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(async () => {
    await deleteAllMeters(t.dataSource);
  });

  const meterOf = async (meterId: string) => (await t.http().get(`/meters/${meterId}`).expect(200)).body;

  it('registers the valid rows of a JSON array and refuses each bad row with its reasons, without blocking the others', async () => {
    await insertMeter(t.dataSource, { meter_id: 'taken-id', port: 4100 });
    await insertMeter(t.dataSource, { meter_id: 'holder', port: 4101 });
    const rows = [
      { meter_id: 'ok-1', address: '127.0.0.1', port: 4001 }, // 0
      { meter_id: 'bad id!', address: '127.0.0.1', port: 4002 }, // 1
      { meter_id: 'ok-2', address: '10.1.2.3', port: 4003, name: 'Hall', enabled: false }, // 2
      { meter_id: 'str-port', address: '127.0.0.1', port: '4004' }, // 3
      { meter_id: 'outside', address: '8.8.8.8', port: 4005 }, // 4
      { meter_id: 'link-local', address: '169.254.169.254', port: 80 }, // 5
      { meter_id: 'taken-id', address: '127.0.0.1', port: 4006 }, // 6
      { meter_id: 'taken-address', address: '127.0.0.1', port: 4101 }, // 7
      { meter_id: 'ok-1', address: '127.0.0.1', port: 4007 }, // 8: same id as row 0
      { meter_id: 'same-place', address: '127.0.0.1', port: 4001 }, // 9: same address and port as row 0
      { meter_id: 'ok-3', address: '::1', port: 4008 }, // 10
    ];
    const response = await t.http().post('/meters/bulk').send(rows).expect(200);
    const result = response.body as BulkResult;

    expect(result.created.sort()).toEqual(['ok-1', 'ok-2', 'ok-3']);
    expect(result.created_count).toBe(3);
    expect(result.refused_count).toBe(8);
    expect(result.refused.map((r) => r.row)).toEqual([1, 3, 4, 5, 6, 7, 8, 9]);

    expect(refusedRow(result, 1).reasons.join(' ')).toContain('meter_id');
    expect(refusedRow(result, 3)).toMatchObject({ meter_id: 'str-port' });
    expect(refusedRow(result, 3).reasons.join(' ')).toContain('port');
    expect(refusedRow(result, 4).reasons.join(' ')).toContain('outside the allowed meter networks');
    expect(refusedRow(result, 5).reasons.join(' ')).toContain('link-local');
    expect(refusedRow(result, 6).reasons).toEqual(['meter "taken-id" already exists']);
    expect(refusedRow(result, 7).reasons).toEqual(['another meter is already registered at 127.0.0.1 port 4101']);
    expect(refusedRow(result, 8).reasons).toEqual(['duplicate of row 0 in this request']);
    expect(refusedRow(result, 9).reasons).toEqual(['duplicate of row 0 in this request']);

    // What was created is what the rows said; what was refused is not there.
    expect(await meterOf('ok-1')).toMatchObject({ address: '127.0.0.1', port: 4001, enabled: true, name: null });
    expect(await meterOf('ok-2')).toMatchObject({ address: '10.1.2.3', port: 4003, enabled: false, name: 'Hall' });
    expect(await meterOf('ok-3')).toMatchObject({ address: '::1', port: 4008 });
    for (const refused of ['str-port', 'outside', 'link-local', 'taken-address', 'same-place']) {
      await t.http().get(`/meters/${refused}`).expect(404);
    }
    // The taken id keeps its original address and port.
    expect(await meterOf('taken-id')).toMatchObject({ port: 4100 });
    expect((await t.http().get('/meters').expect(200)).body.total).toBe(5);
  });

  it('reads text/csv with a header: quoted names with commas, typed port and enabled, a bad row refused', async () => {
    const csv = [
      'meter_id,address,port,name,enabled',
      'csv-1,127.0.0.1,4011,"Hall, north wing",true',
      'csv-2,127.0.0.1,4012,"Said ""hi"", then left",false',
      'csv-3,127.0.0.1,not-a-port,,true',
      'csv-4,127.0.0.1,4014',
      '',
    ].join('\r\n');
    const response = await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(200);
    const result = response.body as BulkResult;
    expect(result.created.sort()).toEqual(['csv-1', 'csv-2', 'csv-4']);
    expect(result.refused).toEqual([{ row: 2, meter_id: 'csv-3', reasons: [expect.stringContaining('port')] }]);

    expect(await meterOf('csv-1')).toMatchObject({ port: 4011, name: 'Hall, north wing', enabled: true });
    expect(await meterOf('csv-2')).toMatchObject({ port: 4012, name: 'Said "hi", then left', enabled: false });
    expect(await meterOf('csv-4')).toMatchObject({ port: 4014, name: null, enabled: true });
  });

  it('refuses a row whose name PostgreSQL cannot store (NUL, an unpaired surrogate) and creates the others', async () => {
    const rows = [
      { meter_id: 'nul-ok', address: '127.0.0.1', port: 4041 },
      { meter_id: 'nul-1', address: '127.0.0.1', port: 4042, name: 'a\u0000b' },
      { meter_id: 'surrogate-1', address: '127.0.0.1', port: 4043, name: 'a\ud800b' },
    ];
    // JSON.stringify would write the lone surrogate as \ud800 too; sent as text so that it arrives as JSON has it.
    const response = await t.http().post('/meters/bulk').set('content-type', 'application/json').send(JSON.stringify(rows)).expect(200);
    const result = response.body as BulkResult;
    expect(result.created).toEqual(['nul-ok']);
    expect(refusedRow(result, 1).reasons).toEqual(['name must not contain the NUL character (U+0000)']);
    expect(refusedRow(result, 2).reasons).toEqual(['name must be well-formed Unicode (it has an unpaired surrogate)']);

    const csv = 'meter_id,address,port,name\ncsv-nul-ok,127.0.0.1,4044,fine\ncsv-nul,127.0.0.1,4045,a\u0000b\n';
    const csvResult = (await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(200)).body as BulkResult;
    expect(csvResult.created).toEqual(['csv-nul-ok']);
    expect(refusedRow(csvResult, 1)).toEqual({ row: 1, meter_id: 'csv-nul', reasons: ['name must not contain the NUL character (U+0000)'] });
  });

  it('refuses a CSV row with more cells than the header names, and creates the others', async () => {
    const csv = 'meter_id,address,port,name\nwide-ok,127.0.0.1,4051,Hall\nwide-1,127.0.0.1,4052,Hall, north wing\n';
    const result = (await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(200)).body as BulkResult;
    expect(result.created).toEqual(['wide-ok']);
    expect(refusedRow(result, 1)).toEqual({
      row: 1,
      meter_id: 'wide-1',
      reasons: ['row has 1 more cell than the header line names (quote a name with a comma)'],
    });
    await t.http().get('/meters/wide-1').expect(404);
  });

  it('answers 415 for a body that is neither JSON nor CSV', async () => {
    const response = await t.http().post('/meters/bulk').type('form').send('meter_id=f1&address=127.0.0.1&port=4061').expect(415);
    expect(response.body).toEqual({
      statusCode: 415,
      error: 'Unsupported Media Type',
      message: 'request body must be JSON (application/json) or CSV (text/csv)',
    });
  });

  it('answers 400 in the error shape for a JSON body that is not an array', async () => {
    const response = await t
      .http()
      .post('/meters/bulk')
      .send({ meter_id: 'single', address: '127.0.0.1', port: 4020 })
      .expect(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining('array') });
    await t.http().get('/meters/single').expect(404);
  });

  it('answers 400 for malformed CSV (an unterminated quote) and registers nothing', async () => {
    const csv = 'meter_id,address,port,name\ncsv-ok,127.0.0.1,4021,fine\ncsv-bad,127.0.0.1,4022,"never closed\n';
    const response = await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(400);
    expect(response.body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: expect.stringContaining('unterminated'),
    });
    expect((await t.http().get('/meters').expect(200)).body.total).toBe(0);
  });

  it.each([
    ['no header line (its first row would be taken for one)', 'h1,127.0.0.1,4031\nh2,127.0.0.1,4032\n', 'unknown column "h1"'],
    ['an empty body', '', 'no header line'],
    ['a header without port', 'meter_id,address\nh3,127.0.0.1\n', 'lacks the column "port"'],
    ['an unknown column', 'meter_id,address,port,colour\nh4,127.0.0.1,4034,red\n', 'unknown column "colour"'],
    ['a __proto__ column', 'meter_id,address,port,__proto__\nh5,127.0.0.1,4035,x\n', 'unknown column "__proto__"'],
    ['a column named twice', 'meter_id,address,port,port\nh6,127.0.0.1,4036,4037\n', 'column "port" appears twice'],
  ])('answers 400 for CSV with %s and registers nothing', async (_name, csv, message) => {
    const response = await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining(message) });
    expect((await t.http().get('/meters').expect(200)).body.total).toBe(0);
  });

  it('registers 5,000 rows in one request, all visible in GET /meters', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => ({
      meter_id: `bulk-${i}`,
      address: '127.0.0.1',
      port: 10_000 + i,
    }));
    const response = await t.http().post('/meters/bulk').send(rows).expect(200);
    expect(response.body.created_count).toBe(5000);
    expect(response.body.refused).toEqual([]);
    expect(new Set(response.body.created)).toEqual(new Set(rows.map((r) => r.meter_id)));
    const list = await t.http().get('/meters?limit=1').expect(200);
    expect(list.body.total).toBe(5000);
    expect(await meterOf('bulk-4999')).toMatchObject({ port: 14_999 });
  });
});

describe('Bulk registration body limits', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('bulk_limits', { HTTP_BODY_LIMIT_BYTES: '1024', HTTP_BULK_BODY_LIMIT_BYTES: '4096' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const rows = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ meter_id: `lim-${i}`, address: '127.0.0.1', port: 4200 + i }));

  it('takes a bulk body above the normal limit but within HTTP_BULK_BODY_LIMIT_BYTES', async () => {
    const body = rows(40);
    const size = Buffer.byteLength(JSON.stringify(body));
    expect(size).toBeGreaterThan(1024);
    expect(size).toBeLessThan(4096);
    const response = await t.http().post('/meters/bulk').send(body).expect(200);
    expect(response.body.created_count).toBe(40);
  });

  it('answers 413 in the error shape for a JSON or CSV bulk body over HTTP_BULK_BODY_LIMIT_BYTES', async () => {
    const body = rows(120);
    expect(Buffer.byteLength(JSON.stringify(body))).toBeGreaterThan(4096);
    const response = await t.http().post('/meters/bulk').send(body).expect(413);
    expect(response.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'request body is too large' });

    const csvRows = rows(250).map((r) => `${r.meter_id},${r.address},${r.port}`);
    const csv = ['meter_id,address,port', ...csvRows].join('\n');
    expect(Buffer.byteLength(csv)).toBeGreaterThan(4096);
    const csvResponse = await t.http().post('/meters/bulk').set('content-type', 'text/csv').send(csv).expect(413);
    expect(csvResponse.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'request body is too large' });
    await t.http().get('/meters/lim-100').expect(404);
  });

  it('keeps HTTP_BODY_LIMIT_BYTES on the other routes (POST /meters)', async () => {
    const body = { meter_id: 'big', address: '127.0.0.1', port: 4500, name: 'x'.repeat(2000) };
    const response = await t.http().post('/meters').send(body).expect(413);
    expect(response.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'request body is too large' });
    // The same route takes a body within the limit.
    await t.http().post('/meters').send({ meter_id: 'small', address: '127.0.0.1', port: 4501 }).expect(201);
  });
});
