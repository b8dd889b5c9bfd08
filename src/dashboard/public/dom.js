// Small DOM helpers. Everything the API sends (meter names are user input) becomes text nodes or attribute values,
// never markup: nothing in the dashboard parses data as HTML.

/**
 * An element with attributes and children. Attributes named on* become event listeners; false, null and undefined
 * leave an attribute out. Children are nodes or strings (strings become text nodes); null and false are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...nodes(children));
  return element;
}

/** Replaces an element's children. */
export function fill(element, ...children) {
  element.replaceChildren(...nodes(children));
  return element;
}

function nodes(children) {
  return children
    .flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

/** An ISO instant as a local date and time, or a dash. */
export function formatTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '–';
}

/** A number with at most three decimals and local grouping, with its unit; a dash for null. */
export function formatNumber(value, unit) {
  return value === null || value === undefined ? '–' : `${decimal.format(value)}${unit ? ` ${unit}` : ''}`;
}

/** "5 min ago", "3 h ago", "2 d ago": how old an instant is, roughly. */
export function formatAge(iso, now = Date.now()) {
  if (!iso) return '';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** host:port, with an IPv6 address in brackets. */
export function formatEndpoint(address, port) {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The link to a meter's page. */
export function meterHref(meterId) {
  return `#/meters/${encodeURIComponent(meterId)}`;
}

/** The health state as a badge; the state is also a data attribute for styles and tests. */
export function healthBadge(state) {
  return h('span', { class: `badge badge-${state}`, 'data-state': state }, state);
}
