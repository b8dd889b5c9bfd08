import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DASHBOARD_DIR, VENDOR_FILES } from '../src/dashboard/dashboard';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { insertMeter, insertReadings } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * The dashboard at / (issue 6, item 5), in Debian's headless Chromium driven by playwright-core (no browser
 * download): the real app on a real database, meters read from the simulator by a real polling cycle, readings
 * seeded for the charts. Chromium missing is a failure, never a skip: `npm test` installs it first
 * (test/setup/ensure-chromium.sh).
 */

// The globals of the functions that run inside the page (page.evaluate, waitForFunction). Declared here, in this
// module only: the project compiles without the DOM library, so that service code cannot use browser globals.
declare const document: any, location: any, window: any, sessionStorage: any, localStorage: any, getComputedStyle: any;

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** As the machine notes say: without the background-networking flags Chromium keeps trying to reach Google. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = resolve(__dirname, 'artifacts');
const KEY = 'dash-test-key-5e0c1d9a7b3f4e21';
/** The consumption bars' colour (charts.js CONSUMPTION_COLOUR), as RGB. */
const BAR_RGB = [0x1f, 0x6f, 0x9f] as const;
const CURRENT_RGB = [0xc2, 0x41, 0x0c] as const;
/** A name that would run script or add markup if the page put data into innerHTML. */
const HOSTILE_NAME = 'Workshop <img src=x onerror="window.__pwned=1"> & "main"';
const FLATS = 30;

/** Readings of 2023-08-12 and 2023-08-13 (UTC), one an hour, 2 kWh an hour, current swinging 5..35 A. */
const HISTORY: [string, number, number][] = Array.from({ length: 48 }, (_, hour) => [
  new Date(Date.UTC(2023, 7, 12, hour, 30)).toISOString(),
  1000 + 2 * hour,
  20 + 15 * Math.sin((hour / 24) * 2 * Math.PI),
]);

interface Listening {
  t: TestApp;
  base: string;
}

async function listening(label: string, env: Record<string, string> = {}): Promise<Listening> {
  const t = await createTestApp(label, env);
  const server = t.app.getHttpServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  return { t, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** Pixels of one colour (within a small tolerance, opaque) on the canvas of a chart. */
function colourPixels(page: Page, chart: string, rgb: readonly number[]): Promise<number> {
  return page.evaluate(
    ([selector, [r, g, b]]) => {
      const canvas = document.querySelector(`${selector} canvas`);
      if (!canvas) return -1;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) <= 12 && Math.abs(data[i + 1] - g) <= 12 && Math.abs(data[i + 2] - b) <= 12 && data[i + 3] > 200) count++;
      }
      return count;
    },
    [chart, rgb] as const,
  );
}

const rowIds = (page: Page) => page.locator('#meters tbody tr[data-meter-id]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-meter-id')));

describe('Dashboard at / in headless Chromium (issue 6.5)', () => {
  let open: Listening;
  let locked: Listening;
  let sim: Simulator;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Console errors and uncaught exceptions of every page (a CSP violation is one). */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not at ${CHROMIUM}: run \`sh test/setup/ensure-chromium.sh\` (as root it installs Debian's chromium), or set CHROMIUM_PATH`);
    }
    [open, locked] = await Promise.all([listening('dash'), listening('dash_key', { API_KEY: KEY })]);
    const db = open.t.dataSource;

    // Simulated meters: one healthy with a name to escape, FLATS healthy flats, one answering 500; one registered on
    // a port nothing listens on, one disabled (never polled).
    const [upPort, downPort, deadPort, ...flatPorts] = await freePorts(3 + FLATS);
    const ids = new Map([
      [upPort, 'dash-up'],
      [downPort, 'dash-down'],
      ...flatPorts.map((port, i): [number, string] => [port, `dash-flat-${String(i + 1).padStart(2, '0')}`]),
    ]);
    sim = await startSimulator({ ports: [upPort, downPort, ...flatPorts], idOf: (port) => ids.get(port)! });
    expect(sim.failedPorts).toEqual([]);
    sim.setFault(downPort, { kind: 'status', status: 500 });
    await insertMeter(db, { meter_id: 'dash-up', port: upPort, name: HOSTILE_NAME });
    await insertMeter(db, { meter_id: 'dash-down', port: downPort, name: 'Pump house' });
    await insertMeter(db, { meter_id: 'dash-dead', port: deadPort, name: 'Old barn' });
    await insertMeter(db, { meter_id: 'dash-off', enabled: false, name: 'Spare' });
    for (const [i, port] of flatPorts.entries()) await insertMeter(db, { meter_id: ids.get(port)!, port, name: `Flat ${i + 1}` });
    await insertReadings(db, 'dash-up', HISTORY);
    expect(await open.t.polling.runCycle()).toMatchObject({ meters: FLATS + 3, ok: FLATS + 1, failed: 2 });
    await open.t.writer.flush();

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC', locale: 'en-GB' });
    page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    await open?.t.close();
    await locked?.t.close();
  });

  afterEach(() => {
    // No CSP violation, failed module load or script error on any page of any test.
    expect(pageErrors).toEqual([]);
  });

  describe('the meters table', () => {
    beforeAll(async () => {
      await page.goto(open.base);
      await page.locator('#meters tbody tr[data-meter-id]').first().waitFor();
    });

    it('loads the page, its scripts and styles from this origin under the API\'s CSP', async () => {
      expect(await page.title()).toBe('Meters · Electric Meter');
      const styled = await page.locator('.badge-up').first().evaluate((badge) => getComputedStyle(badge).backgroundColor);
      expect(styled).toBe('rgb(26, 127, 55)');
    });

    it('shows every seeded meter with the health, last reading and last error the API reports', async () => {
      const ids = await rowIds(page);
      expect(ids).toHaveLength(FLATS + 4);
      expect(ids).toEqual(expect.arrayContaining(['dash-up', 'dash-down', 'dash-dead', 'dash-off', 'dash-flat-01', 'dash-flat-30']));
      const expected: Record<string, string> = { 'dash-up': 'up', 'dash-down': 'down', 'dash-dead': 'down', 'dash-off': 'unknown', 'dash-flat-07': 'up' };
      for (const [id, state] of Object.entries(expected)) {
        const api = (await open.t.http().get(`/meters/${id}`).expect(200)).body;
        expect(api.health.state).toBe(state);
        const row = page.locator(`#meters tr[data-meter-id="${id}"]`);
        expect({ id, state: await row.locator('.badge').getAttribute('data-state') }).toEqual({ id, state });
        expect(await row.locator('td.error').textContent()).toBe(api.health.last_error ?? '');
      }
      expect(await page.locator('tr[data-meter-id="dash-down"] td.error').textContent()).not.toBe('');
      const up = page.locator('tr[data-meter-id="dash-up"]');
      const reading = (await open.t.http().get('/meters/dash-up').expect(200)).body.latest_reading;
      expect(reading).not.toBeNull();
      expect(await up.locator('td').nth(6).textContent()).toContain(' kWh');
      expect(await up.locator('td').nth(5).getAttribute('title')).toBe(reading.taken_at);
    });

    it('shows a meter name as text, never as markup', async () => {
      expect(await page.locator('tr[data-meter-id="dash-up"] td').nth(1).textContent()).toBe(HOSTILE_NAME);
      expect(await page.locator('#meters img').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    });

    it('narrows the table by health state (the API\'s state filter) and by text', async () => {
      await page.selectOption('#filter-state', 'down');
      await page.waitForFunction(() => document.querySelectorAll('#meters tbody tr[data-meter-id]').length === 2);
      expect((await rowIds(page)).sort()).toEqual(['dash-dead', 'dash-down']);
      expect(new URL(page.url()).hash).toBe('#/?state=down');
      expect(await page.locator('#table-summary').textContent()).toContain('of 2');

      await page.selectOption('#filter-state', '');
      await page.selectOption('#filter-enabled', 'false');
      await page.waitForFunction(() => document.querySelectorAll('#meters tbody tr[data-meter-id]').length === 1);
      expect(await rowIds(page)).toEqual(['dash-off']);
      expect(new URL(page.url()).hash).toBe('#/?enabled=false');
      await page.selectOption('#filter-enabled', '');
      await page.waitForFunction(() => document.querySelectorAll('#meters tbody tr[data-meter-id]').length > 2);
      await page.fill('#filter-text', 'workshop');
      expect(await rowIds(page)).toEqual(['dash-up']);
      await page.fill('#filter-text', '  BARN ');
      expect(await rowIds(page)).toEqual(['dash-dead']);
      await page.fill('#filter-text', 'no such meter anywhere');
      expect(await rowIds(page)).toEqual([]);
      expect(await page.locator('#meters td.empty').textContent()).toContain('no such meter anywhere');
      await page.fill('#filter-text', '');
      expect(await rowIds(page)).toHaveLength(FLATS + 4);
    });

    it('pages with limit and offset as GET /meters does', async () => {
      await page.goto(`${open.base}#/?limit=25`);
      await page.waitForFunction(() => document.querySelectorAll('#meters tbody tr[data-meter-id]').length === 25);
      const api = (await open.t.http().get('/meters?limit=25&offset=0').expect(200)).body;
      expect(await rowIds(page)).toEqual(api.items.map((meter: { meter_id: string }) => meter.meter_id));
      await page.click('.pager a:has-text("Next")');
      await page.waitForFunction(() => document.querySelectorAll('#meters tbody tr[data-meter-id]').length === 9);
      const next = (await open.t.http().get('/meters?limit=25&offset=25').expect(200)).body;
      expect(await rowIds(page)).toEqual(next.items.map((meter: { meter_id: string }) => meter.meter_id));
      expect(await page.locator('#table-summary').textContent()).toContain('Meters 26–34 of 34');
      expect(new URL(page.url()).hash).toBe('#/?limit=25&offset=25');
    });

    it('saves a screenshot of the table', async () => {
      await page.goto(open.base);
      await page.locator('tr[data-meter-id="dash-up"]').waitFor();
      const file = join(ARTIFACTS, 'dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      expect(statSync(file).size).toBeGreaterThan(10_000);
      console.log(`dashboard screenshot: ${file}`);
    });
  });

  describe('a meter page', () => {
    const period = '?from=2023-08-12&to=2023-08-13&bucket=hour';

    it('opens from the table on the seven days up to the latest reading, per hour', async () => {
      await page.goto(open.base);
      await page.click('tr[data-meter-id="dash-up"] a');
      await page.locator('#consumption-chart[data-points]').waitFor();
      await page.locator('#current-chart[data-points]').waitFor();
      expect(new URL(page.url()).hash).toBe('#/meters/dash-up');
      const latest = (await open.t.http().get('/meters/dash-up').expect(200)).body.latest_reading.taken_at as string;
      const to = latest.slice(0, 10);
      const from = new Date(Date.parse(to) - 6 * 86_400_000).toISOString().slice(0, 10);
      expect(await page.inputValue('#period-from')).toBe(from);
      expect(await page.inputValue('#period-to')).toBe(to);
      expect(await page.inputValue('#period-bucket')).toBe('hour');
      // The seeded history is from 2023: in these seven days there is only the reading of the polling cycle.
      expect(await page.locator('#consumption-chart').getAttribute('data-points')).toBe('1');
      expect(await page.locator('#current-chart').getAttribute('data-points')).toBe('1');
    });

    it('draws energy per hour and current over the chosen period', async () => {
      await page.goto(`${open.base}#/meters/dash-up${period}`);
      // The page before showed this meter's default period: wait for this period's charts, not those.
      await page.waitForFunction(
        (points) =>
          document.querySelector('#consumption-chart')?.getAttribute('data-points') === '48' &&
          document.querySelector('#current-chart')?.getAttribute('data-points') === points,
        String(HISTORY.length),
      );
      // 48 hourly buckets from the statistics endpoint, 48 readings from the history endpoint.
      expect(await page.locator('#consumption-chart').getAttribute('data-points')).toBe('48');
      expect(await page.locator('#current-chart').getAttribute('data-points')).toBe(String(HISTORY.length));
      // Drawn, not just sized: the bars' and the line's colours are on the canvases.
      expect(await colourPixels(page, '#consumption-chart', BAR_RGB)).toBeGreaterThan(2000);
      expect(await colourPixels(page, '#current-chart', CURRENT_RGB)).toBeGreaterThan(500);
      const stats = (await open.t.http().get('/meters/dash-up/stats?start_date=2023-08-12&end_date=2023-08-13&tz=UTC').expect(200)).body;
      expect(await page.locator('#period-figures').textContent()).toContain(`Readings${stats.readings}`);
      expect(await page.locator('.meter-header h1').textContent()).toBe(`Meter dash-up · ${HOSTILE_NAME}`);
    });

    it('saves a screenshot of the meter page', async () => {
      const file = join(ARTIFACTS, 'dashboard-meter.png');
      await page.screenshot({ path: file, fullPage: true });
      expect(statSync(file).size).toBeGreaterThan(10_000);
      console.log(`dashboard meter screenshot: ${file}`);
    });

    it('changes the period and bucket from the form', async () => {
      await page.fill('#period-to', '2023-08-14');
      await page.selectOption('#period-bucket', 'day');
      await page.click('#period button[type="submit"]');
      await page.waitForFunction(() => location.hash.includes('bucket=day'));
      // Three days, two of them with readings: two bars (a day without readings has no figure, not a zero).
      const stats = (await open.t.http().get('/meters/dash-up/stats?start_date=2023-08-12&end_date=2023-08-14&tz=UTC&bucket=day').expect(200)).body;
      expect(stats.buckets.map((bucket: { readings: number }) => bucket.readings)).toEqual([24, 24, 0]);
      await page.waitForFunction(() => document.querySelector('#consumption-chart')?.getAttribute('data-points') === '2');
      expect(new URL(page.url()).hash).toBe('#/meters/dash-up?from=2023-08-12&to=2023-08-14&bucket=day');
      expect(await colourPixels(page, '#consumption-chart', BAR_RGB)).toBeGreaterThan(2000);
    });

    it('draws nothing for a meter without readings, and says so', async () => {
      await page.goto(`${open.base}#/meters/dash-off${period}`);
      await page.locator('#current-chart[data-points]').waitFor();
      await page.locator('#consumption-chart[data-points]').waitFor();
      expect(await page.locator('#consumption-chart').getAttribute('data-points')).toBe('0');
      expect(await page.locator('#current-chart').getAttribute('data-points')).toBe('0');
      expect(await colourPixels(page, '#consumption-chart', BAR_RGB)).toBe(0);
      expect(await colourPixels(page, '#current-chart', CURRENT_RGB)).toBe(0);
      expect(await page.locator('main').textContent()).toContain('No readings in this period');
    });

    it('answers an unknown meter with the API\'s message', async () => {
      await page.goto(`${open.base}#/meters/dash-missing`);
      await page.locator('#view .error').waitFor();
      expect(await page.locator('#view .error').textContent()).toBe('meter "dash-missing" does not exist');
      // Chromium logs the 404 of that request itself; it is the one error this test expects.
      const expected = pageErrors.filter((error) => /status of 404/.test(error));
      expect(expected).toHaveLength(1);
      pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((error) => !expected.includes(error)));
    });

    it('links into the Swagger UI at operations the API document has', async () => {
      await page.goto(`${open.base}#/meters/dash-up${period}`);
      // Both charts drawn: each writes its note, with its link into the docs, as it is drawn (CI once read the
      // links between the two).
      await page.locator('#current-chart[data-points]').waitFor();
      await page.locator('#consumption-chart[data-points]').waitFor();
      const links = await page.locator('a[href^="docs"]').evaluateAll((anchors) => anchors.map((a) => a.getAttribute('href')!));
      const doc = (await open.t.http().get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<string, { operationId: string; tags?: string[] }>>;
      };
      const anchors = new Set(
        Object.values(doc.paths).flatMap((item) => Object.values(item).flatMap((op) => (op.tags ?? []).map((tag) => `docs#/${tag}/${op.operationId}`))),
      );
      const deep = links.filter((href) => href.includes('#'));
      expect(deep.length).toBeGreaterThanOrEqual(3);
      for (const href of deep) expect({ href, documented: anchors.has(href) }).toEqual({ href, documented: true });
      expect(links).toContain('docs');
      const docs = await context.request.get(new URL('docs', open.base).toString());
      expect(docs.status()).toBe(200);
    });
  });

  describe('with API_KEY set and reads closed', () => {
    it('asks for the key, refuses a wrong one, then keeps the right one for the tab and sends it as X-API-Key', async () => {
      const keyed = await browser.newContext({ timezoneId: 'UTC' });
      const tab = await keyed.newPage();
      tab.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
      const sentKeys: (string | undefined)[] = [];
      tab.on('request', (request) => {
        if (new URL(request.url()).pathname.startsWith('/meters')) sentKeys.push(request.headers()['x-api-key']);
      });
      try {
        await insertMeter(locked.t.dataSource, { meter_id: 'dash-locked', name: 'Behind the key' });
        await tab.goto(locked.base);
        await tab.locator('#key-form').waitFor({ state: 'visible' });
        expect(await tab.locator('#key-message').textContent()).toContain('needs its API key');
        expect(await tab.locator('#meters').count()).toBe(0);

        await tab.fill('#key-input', 'not-the-key-but-long-enough');
        await tab.click('#key-form button[type="submit"]');
        await tab.waitForFunction(() => document.querySelector('#key-message')?.textContent?.includes('refused'));
        expect(await tab.evaluate(() => sessionStorage.length)).toBe(0);

        await tab.fill('#key-input', KEY);
        await tab.click('#key-form button[type="submit"]');
        await tab.locator('tr[data-meter-id="dash-locked"]').waitFor();
        expect(await tab.locator('#key-form').isHidden()).toBe(true);
        expect(await tab.evaluate(() => Object.values({ ...sessionStorage }))).toEqual([KEY]);
        expect(await tab.evaluate(() => localStorage.length)).toBe(0);

        await tab.reload();
        await tab.locator('tr[data-meter-id="dash-locked"]').waitFor();
        expect(sentKeys.at(-1)).toBe(KEY);
        expect(sentKeys).toEqual(expect.arrayContaining([undefined, 'not-the-key-but-long-enough', KEY]));

        await tab.click('#forget-key');
        await tab.locator('#key-form').waitFor({ state: 'visible' });
        expect(await tab.evaluate(() => sessionStorage.length)).toBe(0);
      } finally {
        await keyed.close();
      }
    });
  });
});

describe('Dashboard files and the API routes around them (issue 6.5)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('dash_http', { API_KEY: KEY });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves the page and its files without the key, with the security headers', async () => {
    const page = await t.http().get('/').expect(200).expect('Content-Type', /text\/html/);
    expect(page.text).toContain('<script type="module" src="app.js"></script>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const referenced = [...page.text.matchAll(/(?:src|href)="([^"#]+\.(?:js|css))"/g)].map((match) => `/${match[1]}`);
    expect(referenced.sort()).toEqual(['/app.js', '/dashboard.css', '/vendor/uPlot.min.css']);
    for (const path of [...referenced, ...Object.keys(VENDOR_FILES), '/meters.js', '/meter.js', '/charts.js', '/api.js', '/dom.js']) {
      const file = await t.http().get(path);
      expect({ path, status: file.status, type: file.headers['content-type'] }).toEqual({
        path,
        status: 200,
        type: expect.stringMatching(path.endsWith('.css') ? /^text\/css/ : /^(?:text|application)\/javascript/),
      });
    }
    await t.http().head('/').expect(200);
  });

  it('never puts data into markup: no innerHTML, outerHTML, insertAdjacentHTML or document.write in its scripts', () => {
    const scripts = readdirSync(DASHBOARD_DIR).filter((file) => file.endsWith('.js'));
    expect(scripts.length).toBeGreaterThanOrEqual(5);
    for (const file of scripts) {
      const source = readFileSync(join(DASHBOARD_DIR, file), 'utf8');
      expect({ file, sinks: source.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/g) ?? [] }).toEqual({ file, sinks: [] });
    }
  });

  it('shadows no API route: no file is named like the first segment of a route', () => {
    const express = t.app.getHttpAdapter().getInstance() as { router: { stack: Array<{ route?: { path: string } }> } };
    const segments = new Set(express.router.stack.filter((layer) => layer.route).map((layer) => layer.route!.path.split('/')[1]));
    expect([...segments]).toEqual(expect.arrayContaining(['meters', 'health', 'metrics', 'discovery']));
    const names = [...readdirSync(DASHBOARD_DIR), 'vendor'];
    expect(names.filter((name) => segments.has(name))).toEqual([]);
  });

  it.each([
    ['GET', '/nowhere', 404],
    ['GET', '/meters/dash-nope', 401],
    ['POST', '/', 401],
    ['DELETE', '/index.html', 401],
    ['GET', '/index.html/x', 404],
    ['GET', '/vendor/', 404],
    ['GET', '/vendor/uPlot.cjs.js', 404],
    ['GET', '/vendor/uPlot.esm.js/x', 404],
    ['GET', '/..%2fpackage.json', 404],
    ['GET', '/%2e%2e/%2e%2e/package.json', 404],
    ['GET', '/vendor/..%2f..%2f..%2fpackage.json', 404],
    ['GET', '/.env', 404],
    ['GET', '/%ff', 404],
  ])('answers %s %s in the API\'s JSON error shape (%i)', async (method, path, status) => {
    const response = await t.http()[method.toLowerCase() as 'get' | 'post' | 'delete'](path);
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toEqual({ statusCode: status, error: expect.any(String), message: expect.any(String) });
    expect(response.text).not.toContain('"dependencies"');
  });

  it('keeps the API itself behind the key', async () => {
    await t.http().get('/meters').expect(401);
    await t.http().get('/meters').set('x-api-key', KEY).expect(200);
  });
});
