// One meter: its registration and health (GET /meters/{id}), energy used per hour or day over a period (GET
// /meters/{id}/stats with bucket=hour|day) and current over time (GET /meters/{id}/readings, the history).
import { ApiError, getJson, meterPath } from './api.js';
import { consumptionChart, currentChart } from './charts.js';
import { fill, formatAge, formatEndpoint, formatNumber, formatTime, h, healthBadge, meterHref } from './dom.js';

const BUCKETS = ['hour', 'day'];
/** Readings drawn at most (the newest of the period); the history endpoint gives up to 10,000 a page. */
const MAX_READINGS = 20_000;
const PAGE = 10_000;
const DAY_MS = 86_400_000;
const PRESETS = [
  ['1 day', 1],
  ['7 days', 7],
  ['30 days', 30],
  ['1 year', 365],
];
const SWAGGER = {
  meter: 'docs#/meters/MetersController_get',
  stats: 'docs#/statistics/ReadingsController_stats',
  history: 'docs#/history/ReadingsController_history',
};

/** The browser's time zone: buckets follow its clock, as the chart's axis does. */
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text ?? '') && !Number.isNaN(Date.parse(`${text}T00:00:00Z`));
/** A local calendar day as YYYY-MM-DD. */
const dayOf = (date) => `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
const addDays = (day, days) => dayOf(new Date(Date.parse(`${day}T12:00:00`) + days * DAY_MS));
const spanDays = (from, to) => Math.round((Date.parse(`${to}T12:00:00`) - Date.parse(`${from}T12:00:00`)) / DAY_MS) + 1;

/**
 * The period and bucket of a meter address (#/meters/1000?from=2023-08-12&to=2023-08-14&bucket=hour). Without
 * them: the seven days up to the latest reading (today when there is none), hourly up to a week, daily beyond.
 */
export function chartSettings(query, meter) {
  const latest = meter.latest_reading ? new Date(meter.latest_reading.taken_at) : new Date();
  const to = isDay(query.get('to')) ? query.get('to') : dayOf(latest);
  const from = isDay(query.get('from')) ? query.get('from') : addDays(to, -6);
  const bucket = BUCKETS.includes(query.get('bucket')) ? query.get('bucket') : spanDays(from, to) <= 7 ? 'hour' : 'day';
  return { from, to, bucket };
}

export function meterView(container, meterId, query, context) {
  const charts = [];
  let disposed = false;
  fill(container, h('p', { class: 'muted' }, 'Loading…'));

  async function load() {
    try {
      const meter = await getJson(meterPath(meterId));
      if (disposed) return;
      const settings = chartSettings(query, meter);
      const consumption = h('div', { class: 'chart', id: 'consumption-chart' });
      const current = h('div', { class: 'chart', id: 'current-chart' });
      const figures = h('dl', { class: 'figures', id: 'period-figures' });
      const consumptionNote = h('p', { class: 'muted' });
      const currentNote = h('p', { class: 'muted' });
      fill(
        container,
        h('p', {}, h('a', { href: '#/' }, '← All meters')),
        header(meter),
        periodForm(meterId, settings),
        h('section', {}, h('h2', {}, `Energy used per ${settings.bucket}`), figures, consumption, consumptionNote),
        h('section', {}, h('h2', {}, 'Current'), current, currentNote),
      );
      // Each chart reports its own failure (a period too long for hourly buckets, say) under itself.
      await Promise.all([
        drawConsumption(meterId, settings, consumption, figures, consumptionNote).catch((error) => chartFailed(error, consumptionNote)),
        drawCurrent(meterId, settings, current, currentNote).catch((error) => chartFailed(error, currentNote)),
      ]);
    } catch (error) {
      if (disposed) return;
      if (error instanceof ApiError) fill(container, h('p', {}, h('a', { href: '#/' }, '← All meters')), h('p', { class: 'error', role: 'alert' }, error.message));
      else context.fail(error);
    }
  }

  function chartFailed(error, note) {
    if (disposed) return;
    if (error instanceof ApiError) fill(note, h('span', { class: 'error', role: 'alert' }, error.message));
    else context.fail(error);
  }

  async function drawConsumption(id, settings, element, figures, note) {
    const parameters = { start_date: settings.from, end_date: settings.to, bucket: settings.bucket, tz: TIME_ZONE };
    const stats = await getJson(meterPath(id, 'stats'), parameters);
    if (disposed) return;
    const buckets = stats.buckets ?? [];
    // The last bucket's end closes the x range, so the last bar is drawn whole.
    const starts = [...buckets.map((bucket) => bucket.start), stats.period.end];
    // A bucket without readings has no figure (not a measured zero): no bar.
    const kwh = [...buckets.map((bucket) => (bucket.readings === 0 ? null : bucket.consumption_kwh)), null];
    charts.push(consumptionChart(element, starts, kwh));
    fill(figures, periodFigures(stats));
    fill(
      note,
      stats.readings === 0 ? 'No readings in this period. ' : '',
      `Buckets in ${stats.period.time_zone}. `,
      apiCall('stats', parameters, id),
      ' · ',
      h('a', { href: SWAGGER.stats, target: '_blank', rel: 'noopener' }, 'statistics in the API docs'),
    );
  }

  async function drawCurrent(id, settings, element, note) {
    const parameters = { from: settings.from, to: settings.to, tz: TIME_ZONE, order: 'desc', limit: PAGE };
    const readings = [];
    let cursor;
    do {
      const page = await getJson(meterPath(id, 'readings'), { ...parameters, cursor });
      readings.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && readings.length < MAX_READINGS && !disposed);
    if (disposed) return;
    readings.reverse();
    charts.push(
      currentChart(
        element,
        readings.map((reading) => reading.taken_at),
        readings.map((reading) => reading.current_a),
      ),
    );
    fill(
      note,
      readings.length === 0 ? 'No readings in this period. ' : `${readings.length} readings`,
      cursor ? ` (the newest ${readings.length}: choose a shorter period to see them all)` : '',
      readings.length === 0 ? '' : '. ',
      apiCall('readings', parameters, id),
      ' · ',
      h('a', { href: SWAGGER.history, target: '_blank', rel: 'noopener' }, 'history in the API docs'),
    );
  }

  void load();
  return {
    dispose() {
      disposed = true;
      for (const chart of charts) chart.destroy();
    },
  };
}

function header(meter) {
  const health = meter.health;
  const reading = meter.latest_reading;
  return h(
    'section',
    { class: 'meter-header', 'data-meter-id': meter.meter_id },
    h('h1', {}, `Meter ${meter.meter_id}`, meter.name ? h('span', { class: 'muted' }, ` · ${meter.name}`) : null),
    h(
      'dl',
      { class: 'figures' },
      term('Health', [healthBadge(health.state), health.consecutive_failures > 0 ? ` ${health.consecutive_failures} failed polls in a row` : '']),
      term('Address', h('span', { class: 'mono' }, formatEndpoint(meter.address, meter.port))),
      term('Polled', meter.enabled ? 'yes' : 'no (disabled)'),
      term('Last poll', health.last_attempt_at ? `${formatTime(health.last_attempt_at)} (${formatAge(health.last_attempt_at)})` : 'never'),
      term('Last success', health.last_success_at ? formatTime(health.last_success_at) : 'never'),
      term('Latest reading', reading ? `${formatNumber(reading.current_a, 'A')} · ${formatNumber(reading.energy_kwh, 'kWh')} at ${formatTime(reading.taken_at)}` : 'none'),
      term('Last error', health.last_error ?? 'none'),
    ),
    h('p', {}, h('a', { href: SWAGGER.meter, target: '_blank', rel: 'noopener' }, 'This meter in the API docs (Swagger UI)')),
  );
}

function periodForm(meterId, settings) {
  const from = h('input', { type: 'date', id: 'period-from', value: settings.from, required: true, 'aria-label': 'First day' });
  const to = h('input', { type: 'date', id: 'period-to', value: settings.to, required: true, 'aria-label': 'Last day' });
  const bucket = h('select', { id: 'period-bucket', 'aria-label': 'Bucket' }, BUCKETS.map((b) => h('option', { value: b, selected: b === settings.bucket }, `per ${b}`)));
  const go = (changes) => {
    const next = new URLSearchParams({ from: from.value, to: to.value, bucket: bucket.value, ...changes });
    location.hash = `${meterHref(meterId)}?${next}`;
  };
  return h(
    'form',
    {
      class: 'filters',
      id: 'period',
      onsubmit: (event) => {
        event.preventDefault();
        go({});
      },
    },
    h('label', {}, 'From ', from),
    h('label', {}, 'to ', to),
    bucket,
    h('button', { type: 'submit' }, 'Show'),
    h('span', { class: 'muted' }, 'or the last'),
    PRESETS.map(([label, days]) =>
      h('button', { type: 'button', class: 'link', onclick: () => go({ from: addDays(to.value || settings.to, 1 - days), bucket: days <= 7 ? 'hour' : 'day' }) }, label),
    ),
  );
}

function periodFigures(stats) {
  const current = stats.current_a;
  return [
    term('Energy used', formatNumber(stats.consumption_kwh, 'kWh')),
    term('Average power', formatNumber(stats.average_power_kw, 'kW')),
    term('Readings', String(stats.readings)),
    term('Current', current ? `avg ${formatNumber(current.time_weighted_avg, 'A')} · min ${formatNumber(current.min, 'A')} · max ${formatNumber(current.max, 'A')}` : '–'),
    term('Measured', stats.coverage === null ? '–' : `${formatNumber(stats.coverage * 100)} % of the time (${stats.gap_count} gaps)`),
    stats.resets + stats.misreads > 0 ? term('Counter events', `${stats.resets} resets, ${stats.misreads} misreads`) : null,
  ];
}

function term(name, value) {
  return [h('dt', {}, name), h('dd', {}, value)];
}

/** The request behind a chart, as text to copy. */
function apiCall(endpoint, parameters, meterId) {
  return h('code', {}, `GET /${meterPath(meterId, endpoint)}?${new URLSearchParams(parameters)}`);
}
