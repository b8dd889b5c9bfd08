// The public API as the dashboard uses it: GET requests relative to the page (so the dashboard also works behind
// a proxy that serves the service under a path), with the API key when one is stored for this browser tab.

const KEY_ITEM = 'electric-meter.api-key';

/** The API wants a key (none stored) or refused the stored one. */
export class KeyRequired extends Error {
  constructor(refused) {
    super(refused ? 'the API refused this key' : 'the API needs a key');
    this.refused = refused;
  }
}

/** Any other answer that is not 2xx, with the API's own message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The stored key, kept for this tab only (sessionStorage), or null. */
export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

/** GET a path of the API with query parameters (undefined and '' are left out); resolves with the JSON body. */
export async function getJson(path, parameters = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  const key = storedKey();
  const headers = { Accept: 'application/json' };
  if (key !== null) headers['X-API-Key'] = key;
  const response = await fetch(url, { headers, cache: 'no-store' });
  if (response.status === 401) throw new KeyRequired(key !== null);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, messageOf(body) ?? `${response.status} ${response.statusText}`);
  return body;
}

/** The API's error message ({statusCode, error, message}, message a string or a list). */
function messageOf(body) {
  const message = body && body.message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : null;
}

/**
 * The path of one meter's resource. Browsers remove the segments "." and ".." from every URL (even written as
 * %2E), so meters with those ids cannot be asked for from a page; every other valid id can.
 */
export function meterPath(meterId, ...rest) {
  if (meterId === '.' || meterId === '..') throw new ApiError(400, `meter "${meterId}" cannot be opened from a browser`);
  return ['meters', encodeURIComponent(meterId), ...rest].join('/');
}
