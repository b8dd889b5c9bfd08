// The meters table: GET /meters filtered by health state and enabled and paginated by limit and offset, as the
// API does; the text filter narrows the page shown. The filters live in the address (#/?state=down&offset=100),
// so the back button and a shared link show the same table.
import { getJson } from './api.js';
import { fill, formatAge, formatEndpoint, formatNumber, formatTime, h, healthBadge, meterHref } from './dom.js';

const STATES = ['up', 'down', 'unknown'];
const PAGE_SIZES = [25, 50, 100, 250];
const REFRESH_MS = 30_000;
const DEFAULTS = { state: '', enabled: '', limit: 50, offset: 0, q: '' };

/** The filters of a table address, each checked (the API would refuse a bad one with a 400). */
export function tableFilters(query) {
  const state = STATES.includes(query.get('state')) ? query.get('state') : '';
  const enabled = ['true', 'false'].includes(query.get('enabled')) ? query.get('enabled') : '';
  const limit = PAGE_SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : DEFAULTS.limit;
  const offset = /^\d{1,9}$/.test(query.get('offset') ?? '') ? Number(query.get('offset')) : 0;
  return { state, enabled, limit, offset, q: query.get('q') ?? '' };
}

/** The address of a table; filters at their defaults are left out. */
function tableAddress(filters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value !== DEFAULTS[name]) query.set(name, String(value));
  const text = query.toString();
  return text === '' ? '#/' : `#/?${text}`;
}

export function metersView(container, query, context) {
  const filters = tableFilters(query);
  const go = (changes) => {
    location.hash = tableAddress({ ...filters, offset: 0, ...changes });
  };

  const text = h('input', {
    type: 'search',
    id: 'filter-text',
    placeholder: 'Filter this page: id, name, address',
    value: filters.q,
    'aria-label': 'Filter the meters on this page by id, name or address',
  });
  const state = select('filter-state', 'Health', [['', 'any health'], ...STATES.map((s) => [s, s])], filters.state, (value) => go({ state: value }));
  const enabled = select('filter-enabled', 'Enabled', [['', 'enabled or not'], ['true', 'enabled'], ['false', 'disabled']], filters.enabled, (value) =>
    go({ enabled: value }),
  );
  const size = select('page-size', 'Page size', PAGE_SIZES.map((n) => [String(n), `${n} a page`]), String(filters.limit), (value) =>
    go({ limit: Number(value) }),
  );
  const refresh = h('button', { type: 'button', id: 'refresh', onclick: () => void load() }, 'Refresh');
  const summary = h('p', { id: 'table-summary', class: 'muted' }, 'Loading…');
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  let meters = [];
  let total = 0;

  fill(
    container,
    h('h1', {}, 'Meters'),
    h('form', { class: 'filters', role: 'search', onsubmit: (event) => event.preventDefault() }, text, state, enabled, size, refresh),
    summary,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'meters' },
        h(
          'thead',
          {},
          h('tr', {}, ...['Meter', 'Name', 'Address', 'Enabled', 'Health', 'Last reading', 'Values', 'Last error'].map((title) => h('th', { scope: 'col' }, title))),
        ),
        body,
      ),
    ),
    pager,
  );

  text.addEventListener('input', () => {
    filters.q = text.value;
    // Typing must not reload the page or lose focus: the address is updated in place.
    history.replaceState(null, '', tableAddress(filters));
    show();
  });

  function show() {
    const needle = filters.q.trim().toLowerCase();
    const shown = needle === '' ? meters : meters.filter((meter) => haystack(meter).includes(needle));
    fill(body, shown.length > 0 ? shown.map(row) : h('tr', {}, h('td', { colspan: 8, class: 'empty' }, emptyText(needle))));
    const first = total === 0 ? 0 : filters.offset + 1;
    const last = filters.offset + meters.length;
    fill(
      summary,
      `Meters ${first}–${last} of ${total}`,
      needle === '' ? '' : `; ${shown.length} of them match “${filters.q.trim()}”`,
      ` · updated ${new Date().toLocaleTimeString()}`,
    );
    fill(
      pager,
      pageLink('← Previous', filters.offset > 0, Math.max(0, filters.offset - filters.limit)),
      h('span', { class: 'muted' }, `page ${Math.floor(filters.offset / filters.limit) + 1} of ${Math.max(1, Math.ceil(total / filters.limit))}`),
      pageLink('Next →', last < total, filters.offset + filters.limit),
    );
  }

  function emptyText(needle) {
    if (meters.length === 0) return total > 0 ? 'No meters on this page: go back a page.' : 'No meters match these filters.';
    return `No meter on this page matches “${needle}”.`;
  }

  function pageLink(label, enabledLink, offset) {
    return enabledLink
      ? h('a', { href: tableAddress({ ...filters, offset }), class: 'button' }, label)
      : h('span', { class: 'button disabled', 'aria-disabled': 'true' }, label);
  }

  async function load() {
    try {
      const page = await getJson('meters', { state: filters.state, enabled: filters.enabled, limit: filters.limit, offset: filters.offset });
      meters = page.items;
      total = page.total;
      show();
    } catch (error) {
      context.fail(error);
    }
  }

  void load();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') void load();
  }, REFRESH_MS);
  return { dispose: () => clearInterval(timer) };
}

function select(id, label, options, value, onChange) {
  const element = h(
    'select',
    { id, 'aria-label': label },
    options.map(([optionValue, text]) => h('option', { value: optionValue, selected: optionValue === value }, text)),
  );
  element.addEventListener('change', () => onChange(element.value));
  return element;
}

function haystack(meter) {
  return [meter.meter_id, meter.name ?? '', meter.address, formatEndpoint(meter.address, meter.port)].join(' ').toLowerCase();
}

function row(meter) {
  const reading = meter.latest_reading;
  const health = meter.health;
  return h(
    'tr',
    { 'data-meter-id': meter.meter_id },
    h('td', { class: 'id' }, h('a', { href: meterHref(meter.meter_id) }, meter.meter_id)),
    h('td', {}, meter.name ?? ''),
    h('td', { class: 'mono' }, formatEndpoint(meter.address, meter.port)),
    h('td', {}, meter.enabled ? 'yes' : 'no'),
    h(
      'td',
      { class: 'health' },
      healthBadge(health.state),
      health.state === 'down' && health.consecutive_failures > 1 ? h('span', { class: 'muted' }, ` ×${health.consecutive_failures}`) : null,
    ),
    h('td', { class: 'when', title: reading ? reading.taken_at : '' }, reading ? [formatTime(reading.taken_at), h('br'), h('span', { class: 'muted' }, formatAge(reading.taken_at))] : '–'),
    h('td', { class: 'num' }, reading ? [formatNumber(reading.current_a, 'A'), h('br'), formatNumber(reading.energy_kwh, 'kWh')] : '–'),
    h('td', { class: 'error', title: health.last_error ?? '' }, health.last_error ?? ''),
  );
}
