import { countReadings, insertMeter, insertReadings } from './support/factories';
import { createTestApp, TestApp } from './support/test-app';

describe('Meters registry (SPEC 2)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('meters', { METER_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128,10.0.0.0/8' });
  });
  afterAll(async () => {
    await t.close();
  });

  const meter = (overrides: Record<string, unknown> = {}) => ({
    meter_id: '345631237',
    address: '127.0.0.1',
    port: 4321,
    ...overrides,
  });

  describe('POST /meters', () => {
    it('creates a meter and answers 201 with it, health unknown, no reading yet', async () => {
      const response = await t.http().post('/meters/').send(meter({ name: 'Workshop' })).expect(201);
      expect(response.body).toMatchObject({
        meter_id: '345631237',
        address: '127.0.0.1',
        port: 4321,
        name: 'Workshop',
        enabled: true,
        health: { state: 'unknown', consecutive_failures: 0, last_error: null },
        latest_reading: null,
      });
      await t.http().get('/meters/345631237').expect(200);
    });

    it('answers 409 for a taken meter_id and for a taken address and port', async () => {
      await t.http().post('/meters').send(meter({ meter_id: 'dup-1', port: 5001 })).expect(201);
      const sameId = await t.http().post('/meters').send(meter({ meter_id: 'dup-1', port: 5002 })).expect(409);
      expect(sameId.body).toEqual({ statusCode: 409, error: 'Conflict', message: 'meter "dup-1" already exists' });
      const sameAddress = await t.http().post('/meters').send(meter({ meter_id: 'dup-2', port: 5001 })).expect(409);
      expect(sameAddress.body.message).toBe('another meter is already registered at 127.0.0.1 port 5001');
    });

    it('treats two spellings of one IPv6 address as the same address', async () => {
      await t.http().post('/meters').send(meter({ meter_id: 'v6-a', address: '::1', port: 5100 })).expect(201);
      await t
        .http()
        .post('/meters')
        .send(meter({ meter_id: 'v6-b', address: '0:0:0:0:0:0:0:1', port: 5100 }))
        .expect(409);
    });

    it('gives exactly one 201 and nineteen 409 for twenty identical concurrent POSTs', async () => {
      const body = meter({ meter_id: 'race-1', port: 5200 });
      const responses = await Promise.all(Array.from({ length: 20 }, () => t.http().post('/meters').send(body)));
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    });

    it.each([
      ['meter_id too long', { meter_id: 'x'.repeat(51) }, 'meter_id must be'],
      ['meter_id with a slash', { meter_id: 'a/b' }, 'meter_id must be'],
      ['meter_id empty', { meter_id: '' }, 'meter_id must be'],
      ['meter_id a number', { meter_id: 12 }, 'meter_id must be a string'],
      ['port as a string', { port: '4321' }, 'port must be an integer from 1 to 65535'],
      ['port 0', { port: 0 }, 'port must be an integer from 1 to 65535'],
      ['port 65536', { port: 65536 }, 'port must be an integer from 1 to 65535'],
      ['port 80.5', { port: 80.5 }, 'port must be an integer from 1 to 65535'],
      ['a hostname', { address: 'localhost' }, 'IPv4 or IPv6 literal'],
      ['a URL', { address: 'http://127.0.0.1' }, 'IPv4 or IPv6 literal'],
      ['an address with port', { address: '127.0.0.1:80' }, 'IPv4 or IPv6 literal'],
      ['a zone id', { address: 'fe80::1%eth0' }, 'IPv4 or IPv6 literal'],
      ['an unknown field', { colour: 'red' }, 'property colour should not exist'],
      ['enabled as a string', { enabled: 'yes' }, 'enabled must be a boolean value'],
      // PostgreSQL text cannot hold U+0000: the insert failed, a 500.
      ['a NUL character in the name', { name: 'a\u0000b' }, 'name must not contain the NUL character (U+0000)'],
      ['a NUL character in meter_id', { meter_id: 'b\u00003' }, 'meter_id must be'],
      ['a NUL character in the address', { address: '127.0.0.1\u0000' }, 'IPv4 or IPv6 literal'],
      // stopAtFirstError reported the length rule first.
      ['name a number', { name: 123 }, 'name must be a string (or null)'],
      ['name too long', { name: 'x'.repeat(201) }, 'name must be at most 200 characters'],
      ['address a number', { address: 7 }, 'address must be a string: an IPv4 or IPv6 literal'],
    ])('refuses %s with 400 and a message naming the field', async (_name, overrides, message) => {
      const response = await t.http().post('/meters').send(meter({ meter_id: 'bad-1', port: 5300, ...overrides }));
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(JSON.stringify(response.body.message)).toContain(message);
      await t.http().get('/meters/bad-1').expect(404);
    });

    it('lists one message per bad field', async () => {
      const response = await t.http().post('/meters').send({ meter_id: '', address: 'nowhere', port: 'x' });
      expect(response.status).toBe(400);
      expect(response.body.message).toEqual(
        expect.arrayContaining([
          expect.stringContaining('meter_id'),
          expect.stringContaining('port'),
        ]),
      );
    });

    it('names every refused field by its real problem', async () => {
      const response = await t.http().post('/meters').send({ meter_id: 'types-1', address: null, port: 4321, name: 5 }).expect(400);
      expect(response.body.message).toEqual(
        expect.arrayContaining(['address must be a string: an IPv4 or IPv6 literal', 'name must be a string (or null)']),
      );
    });

    it('answers a body that is a JSON array, not an object, with 400 saying so', async () => {
      const response = await t.http().post('/meters').send([]).expect(400);
      expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: 'request body must be a JSON object' });
    });

    it.each([
      ['text/plain', 'text', 'meter_id=t1'],
      ['a form', 'form', 'meter_id=t1&address=127.0.0.1&port=4321'],
    ])('answers a %s body with 415, not 400 listing every field', async (_name, type, body) => {
      const response = await t.http().post('/meters').type(type).send(body).expect(415);
      expect(response.body).toEqual({ statusCode: 415, error: 'Unsupported Media Type', message: 'request body must be JSON (application/json)' });
      await t.http().get('/meters/t1').expect(404);
    });

    it('answers malformed JSON with 400 in the error shape', async () => {
      const response = await t
        .http()
        .post('/meters')
        .set('content-type', 'application/json')
        .send('{"meter_id": ')
        .expect(400);
      expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: 'request body is not valid JSON' });
    });

    it.each([
      ['outside the allowed networks', '8.8.8.8', 'outside the allowed meter networks'],
      ['link-local (cloud metadata)', '169.254.169.254', 'link-local'],
      ['IPv4-mapped link-local', '::ffff:169.254.169.254', 'link-local'],
      ['unspecified', '0.0.0.0', 'link-local or unspecified'],
    ])('refuses an address %s with 400 and the reason', async (_name, address, reason) => {
      const response = await t.http().post('/meters').send(meter({ meter_id: 'ssrf-1', address, port: 5400 }));
      expect(response.status).toBe(400);
      expect(response.body.message).toContain(reason);
    });

    it('accepts an address inside a configured private network', async () => {
      await t.http().post('/meters').send(meter({ meter_id: 'lan-1', address: '10.1.2.3', port: 80 })).expect(201);
    });
  });

  describe('GET /meters', () => {
    beforeAll(async () => {
      for (let i = 0; i < 5; i++) await insertMeter(t.dataSource, { meter_id: `list-${i}`, port: 6000 + i });
      await t.dataSource.query(`UPDATE meters SET health_state = 'down' WHERE meter_id IN ('list-1', 'list-3')`);
      await t.dataSource.query(`UPDATE meters SET enabled = false WHERE meter_id = 'list-4'`);
    });

    it('paginates with limit and offset in meter_id order, with the total', async () => {
      const all = await t.http().get('/meters?limit=1000').expect(200);
      const ids: string[] = all.body.items.map((m: { meter_id: string }) => m.meter_id);
      expect(ids).toEqual([...ids].sort());
      const page = await t.http().get('/meters/?limit=2&offset=1').expect(200);
      expect(page.body.items.map((m: { meter_id: string }) => m.meter_id)).toEqual(ids.slice(1, 3));
      expect(page.body).toMatchObject({ total: ids.length, limit: 2, offset: 1 });
    });

    it('answers an offset past the end (10 digits) with an empty page', async () => {
      const response = await t.http().get('/meters?offset=2147483647').expect(200);
      expect(response.body).toMatchObject({ items: [], offset: 2147483647 });
      expect(response.body.total).toBeGreaterThan(0);
    });

    it('filters by health state and by enabled', async () => {
      const down = await t.http().get('/meters?state=down').expect(200);
      expect(down.body.items.map((m: { meter_id: string }) => m.meter_id)).toEqual(['list-1', 'list-3']);
      const disabled = await t.http().get('/meters?enabled=false').expect(200);
      expect(disabled.body.items.map((m: { meter_id: string }) => m.meter_id)).toEqual(['list-4']);
    });

    it.each([
      ['limit=0', 'limit must be an integer from 1 to 1000'],
      ['limit=1001', 'limit must be an integer from 1 to 1000'],
      ['limit=abc', 'limit must be an integer from 1 to 1000'],
      ['limit=-1', 'limit must be an integer from 1 to 1000'],
      ['offset=-1', 'offset must be an integer from 0 to 2147483647'],
      ['offset=abc', 'offset must be an integer from 0 to 2147483647'],
      ['offset=2147483648', 'offset must be an integer from 0 to 2147483647'],
      ['offset=99999999999999999999', 'offset must be an integer from 0 to 2147483647'],
      ['state=sideways', 'state must be one of'],
      ['enabled=maybe', 'enabled must be true or false'],
      ['sort=name', 'property sort should not exist'],
    ])('refuses %s with 400', async (query, message) => {
      const response = await t.http().get(`/meters?${query}`).expect(400);
      expect(JSON.stringify(response.body.message)).toContain(message);
    });
  });

  describe('GET, PATCH and DELETE /meters/{id}', () => {
    it('answers 404 in the error shape for an unknown meter', async () => {
      const response = await t.http().get('/meters/nope').expect(404);
      expect(response.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'meter "nope" does not exist' });
    });

    it('answers 400 for a path id that cannot be a meter id', async () => {
      await t.http().get(`/meters/${'x'.repeat(60)}`).expect(400);
      await t.http().get('/meters/a%20b').expect(400);
    });

    it('patches address, port, name and enabled with the same validation', async () => {
      await insertMeter(t.dataSource, { meter_id: 'patch-1', port: 7000 });
      const response = await t
        .http()
        .patch('/meters/patch-1/')
        .send({ port: 7001, name: 'renamed', enabled: false })
        .expect(200);
      expect(response.body).toMatchObject({ meter_id: 'patch-1', port: 7001, name: 'renamed', enabled: false });
      await t.http().patch('/meters/patch-1').send({ port: 70000 }).expect(400);
      await t.http().patch('/meters/patch-1').send({ address: '8.8.8.8' }).expect(400);
      await t.http().patch('/meters/patch-1').send({ meter_id: 'other' }).expect(400);
      await t.http().patch('/meters/patch-1').send({}).expect(400);
      await t.http().patch('/meters/missing').send({ name: 'x' }).expect(404);
    });

    it('answers 409 when a patch moves a meter onto a taken address and port, naming both', async () => {
      await insertMeter(t.dataSource, { meter_id: 'patch-a', port: 7100 });
      await insertMeter(t.dataSource, { meter_id: 'patch-b', port: 7101 });
      await insertMeter(t.dataSource, { meter_id: 'patch-c', address: '::1', port: 7100 });
      const portOnly = await t.http().patch('/meters/patch-b').send({ port: 7100 }).expect(409);
      expect(portOnly.body.message).toBe('another meter is already registered at 127.0.0.1 port 7100');
      const addressOnly = await t.http().patch('/meters/patch-c').send({ address: '127.0.0.1' }).expect(409);
      expect(addressOnly.body.message).toBe('another meter is already registered at 127.0.0.1 port 7100');
    });

    it('refuses a NUL character in a new name, and null or a number for the address, naming the problem', async () => {
      await insertMeter(t.dataSource, { meter_id: 'patch-nul', port: 7300 });
      const nul = await t.http().patch('/meters/patch-nul').send({ name: 'a\u0000b' }).expect(400);
      expect(nul.body.message).toEqual(['name must not contain the NUL character (U+0000)']);
      const nullAddress = await t.http().patch('/meters/patch-nul').send({ address: null }).expect(400);
      expect(nullAddress.body.message).toEqual(['address must be a string: an IPv4 or IPv6 literal']);
      await t.http().patch('/meters/patch-nul').send([]).expect(400);
      expect((await t.http().get('/meters/patch-nul').expect(200)).body.name).toBeNull();
    });

    it('deletes a meter with its readings (204), then 404', async () => {
      await insertMeter(t.dataSource, { meter_id: 'del-1', port: 7200 });
      await insertReadings(t.dataSource, 'del-1', [
        ['2026-01-01T00:00:00Z', 1],
        ['2026-01-01T00:01:00Z', 2],
      ]);
      expect(await countReadings(t.dataSource, 'del-1')).toBe(2);
      await t.http().delete('/meters/del-1/').expect(204);
      expect(await countReadings(t.dataSource, 'del-1')).toBe(0);
      await t.http().delete('/meters/del-1').expect(404);
      await t.http().get('/meters/del-1').expect(404);
    });
  });
});
