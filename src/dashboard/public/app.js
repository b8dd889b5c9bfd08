// The dashboard's entry: a hash router (#/ the meters table, #/meters/{id} one meter) and the API key prompt.
// Every view is a function (container, ...) => { dispose() } that reads the public API through api.js.
import { forgetKey, KeyRequired, storedKey, storeKey } from './api.js';
import { fill, h } from './dom.js';
import { meterView } from './meter.js';
import { metersView } from './meters.js';

const view = document.getElementById('view');
const notice = document.getElementById('notice');
const keyForm = document.getElementById('key-form');
const keyInput = document.getElementById('key-input');
const keyMessage = document.getElementById('key-message');
const keyStatus = document.getElementById('key-status');
let current = null;

/** What views call when a request fails: ask for the key, or say what went wrong above the view. */
const context = {
  fail(error) {
    if (error instanceof KeyRequired) {
      askForKey(error.refused);
      return;
    }
    fill(notice, h('p', { class: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error)));
    notice.hidden = false;
  },
};

function route() {
  current?.dispose();
  current = null;
  notice.hidden = true;
  keyForm.hidden = true;
  view.hidden = false;
  showKeyStatus();
  const [path, queryText = ''] = location.hash.replace(/^#/, '').split('?', 2);
  const query = new URLSearchParams(queryText);
  const meter = /^\/meters\/([^/]+)$/.exec(path);
  if (meter) {
    let meterId;
    try {
      meterId = decodeURIComponent(meter[1]);
    } catch {
      meterId = meter[1];
    }
    current = meterView(view, meterId, query, context);
    document.title = `Meter ${meterId} · Electric Meter`;
  } else {
    current = metersView(view, query, context);
    document.title = 'Meters · Electric Meter';
  }
}

function askForKey(refused) {
  current?.dispose();
  current = null;
  fill(view);
  view.hidden = true;
  if (refused) forgetKey();
  fill(keyMessage, refused ? 'The API refused that key. Try again.' : 'This service needs its API key to show meters.');
  keyForm.hidden = false;
  showKeyStatus();
  keyInput.focus();
}

function showKeyStatus() {
  const stored = storedKey() !== null;
  fill(
    keyStatus,
    stored
      ? [
          'API key set for this tab · ',
          h('button', { type: 'button', class: 'link', id: 'forget-key', onclick: () => (forgetKey(), route()) }, 'forget it'),
        ]
      : '',
  );
}

keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key === '') return;
  storeKey(key);
  keyInput.value = '';
  route();
});

window.addEventListener('hashchange', route);
route();
