import { openSocket } from './socket.js';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const app = $('zp-app');
const statusLine = $('zp-status');
const num = new Intl.NumberFormat(cfg.lang);
const mean1 = new Intl.NumberFormat(cfg.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const TOKEN_KEY = 'zp-token-' + cfg.code;
const OUTBOX_KEY = 'zp-outbox-' + cfg.code;
const REJECTED = new Set([
  'not_open', 'unknown_question', 'bad_value', 'bad_message', 'bad_json', 'too_large', 'unknown_type', 'not_allowed',
]);

let token = load(TOKEN_KEY);
let outbox = {}; // question id -> latest answer message not yet acknowledged
try {
  outbox = JSON.parse(load(OUTBOX_KEY)) || {};
} catch {}
let question = null;
const counted = {}; // question id -> answer the server has confirmed
const results = {}; // question id -> latest results snapshot
let draft = null; // multiple choice: Set of option ids picked but not yet sent
let link = 'connecting';
let note = ''; // server message shown until the next action
let fatal = '';
let retryTimer = 0;
let retryDelay = 2000;
let view = null; // elements of the rendered question, for updates without rebuilding

// Storage can be missing or full (private mode); the page then works from memory.
function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function save(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {}
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

const sorted = (v) => (Array.isArray(v) ? [...v].sort((a, b) => a - b) : v);
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

function mine() {
  if (!question) return null;
  const pending = outbox[question.id];
  return pending ? pending.value : (counted[question.id] ?? null);
}

function limits() {
  const c = question.choices || {};
  return { min: c.min ?? 1, max: c.max ?? question.options.length };
}

// --- sending -------------------------------------------------------------

function persist() {
  save(OUTBOX_KEY, Object.keys(outbox).length ? JSON.stringify(outbox) : null);
}

function submit(value) {
  note = '';
  // A changed answer gets a new id; a resent one keeps its id so the server can recognise it.
  outbox[question.id] = { type: 'answer', id: newId(), question: question.id, value };
  persist();
  flush();
  update();
}

function flush() {
  clearTimeout(retryTimer);
  for (const msg of Object.values(outbox)) if (!sock.send(msg)) break;
}

function tap(value) {
  if (!question || !question.open) return;
  if (question.kind === 'multiple') {
    draft = draft || new Set(mine() || []);
    if (!draft.delete(value)) draft.add(value);
    note = '';
    update();
  } else if (!same(value, mine())) {
    submit(value);
  }
}

// --- messages ------------------------------------------------------------

function onMessage(m) {
  if (m.type === 'state') onState(m);
  else if (m.type === 'ack') onAck(m);
  else if (m.type === 'error') onError(m);
  else if (m.type === 'results') {
    const old = results[m.question];
    if (old && m.version < old.version) return;
    results[m.question] = m;
    paint();
  }
}

function onState(m) {
  if (m.event && m.event.title) $('zp-event-title').textContent = m.event.title;
  const before = question && question.id;
  question = m.question;
  if (question) {
    if (question.id !== before) {
      draft = null;
      note = '';
    }
    // A state composed just before our answer was counted may still say null: keep the ack.
    if (m.answer != null) counted[question.id] = m.answer;
  }
  build();
}

function onAck(m) {
  counted[m.question] = m.answer;
  if (outbox[m.question] && outbox[m.question].id === m.id) {
    delete outbox[m.question];
    persist();
    if (question && m.question === question.id) draft = null;
  }
  retryDelay = 2000;
  update();
}

function onError(m) {
  const entry = Object.values(outbox).find((a) => a.id === m.id);
  if (!entry && m.id) return; // about a superseded answer or a ping: nothing to tell
  // Only a definite rejection drops an answer; anything else (unavailable, rate_limited,
  // a code this page does not know yet) is retried with backoff.
  if (entry && !REJECTED.has(m.code)) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, retryDelay * (0.75 + Math.random() / 2));
    retryDelay = Math.min(retryDelay * 2, 15000);
    return;
  }
  if (entry) {
    delete outbox[entry.question];
    persist();
    if (question && entry.question === question.id) draft = null;
  }
  note = m.message || '';
  update();
}

// --- rendering -----------------------------------------------------------

function build() {
  view = null;
  app.replaceChildren();
  if (fatal) {
    const alert = el('p', 'zp-error', fatal);
    alert.setAttribute('role', 'alert');
    app.append(alert);
  } else if (!question) {
    app.append(el('p', 'zp-wait', T.next));
  } else {
    const q = question;
    const box = el('section', 'zp-q');
    box.classList.toggle('zp-results', q.show_results);
    view = { buttons: new Map(), fills: new Map(), pcts: new Map() };
    box.append(el('h1', 'zp-prompt', q.prompt), (view.note = el('p', 'zp-note')));
    if (q.kind === 'multiple') box.append((view.hint = el('p', 'zp-hint')));
    const list = el('div', q.kind === 'scale' ? 'zp-scale' : 'zp-opts');
    box.append(list);
    if (q.kind === 'scale') buildScale(q, box, list);
    else buildOptions(q, list);
    if (q.kind === 'multiple') {
      view.send = el('button', 'zp-btn zp-primary', T.send);
      view.send.type = 'button';
      view.send.addEventListener('click', () => submit(sorted([...draft])));
      box.append(view.send);
    }
    if (q.show_results) box.append((view.total = el('p', 'zp-total')));
    app.append(box);
  }
  update();
  paint();
}

function buildOptions(q, list) {
  for (const o of q.options) {
    const b = el('button', 'zp-opt');
    b.type = 'button';
    const fill = el('span', 'zp-fill');
    b.append(fill, el('span', 'zp-label', o.label));
    if (q.show_results) {
      const key = String(o.id);
      const pct = el('span', 'zp-pct');
      b.append(pct);
      view.fills.set(key, fill);
      view.pcts.set(key, pct);
    }
    b.addEventListener('click', () => tap(o.id));
    view.buttons.set(o.id, b);
    list.append(b);
  }
}

function buildScale(q, box, grid) {
  const { min, max } = q.scale;
  const n = max - min + 1;
  grid.style.setProperty('--cols', n <= 6 ? n : Math.ceil(n / 2));
  const chart = el('div', 'zp-chart');
  chart.setAttribute('role', 'img');
  chart.style.setProperty('--start', min - 1); // CSS counters number the columns
  for (let v = min; v <= max; v++) {
    const b = el('button', 'zp-num', String(v));
    b.type = 'button';
    b.addEventListener('click', () => tap(v));
    view.buttons.set(v, b);
    grid.append(b);
    const col = el('span', 'zp-col');
    const fill = el('span', 'zp-fill');
    col.append(fill);
    chart.append(col);
    view.fills.set(String(v), fill);
  }
  const ends = el('p', 'zp-ends');
  ends.append(el('span', '', q.scale.min_label), el('span', '', q.scale.max_label));
  box.append(ends);
  if (q.show_results) {
    view.chart = chart;
    view.mean = el('p', 'zp-mean');
    box.append(chart, view.mean);
  }
}

function update() {
  status();
  if (!view) return;
  const q = question;
  const current = mine();
  const chosen = q.kind === 'multiple' ? draft || new Set(current || []) : null;
  for (const [v, b] of view.buttons) {
    const on = chosen ? chosen.has(v) : current === v;
    b.setAttribute('aria-pressed', on);
    b.classList.toggle('zp-mine', on);
    b.disabled = !q.open;
  }
  if (chosen) {
    const { min, max } = limits();
    const text = min === max ? T.exactly : min <= 1 ? T.upTo : T.between;
    view.hint.textContent = text.replace('{n}', max).replace('{min}', min).replace('{max}', max);
    view.hint.classList.toggle('zp-warn', chosen.size > max);
    view.send.disabled =
      !q.open || chosen.size < min || chosen.size > max || same([...chosen], current || []);
  }
  view.note.textContent = q.open ? '' : q.state === 'draft' ? T.waiting : T.closed;
  if (view.chart) {
    view.chart.childNodes.forEach((col, i) => col.classList.toggle('zp-mine', current === q.scale.min + i));
  }
}

function paint() {
  const r = view && question.show_results && results[question.id];
  if (!r) return;
  const pct = (r.summary && r.summary.percent) || {};
  const share = (k) => pct[k] ?? (r.total ? Math.round((100 * (r.counts[k] || 0)) / r.total) : 0);
  // Columns are scaled to the tallest so a spread-out distribution stays visible.
  let top = 100;
  if (view.chart) top = Math.max(1, ...[...view.fills.keys()].map(share));
  for (const [k, fill] of view.fills) fill.style.setProperty('--p', share(k) / top);
  for (const [k, span] of view.pcts) span.textContent = share(k) + '%';
  view.total.textContent = num.format(r.total) + ' ' + (r.total === 1 ? T.response : T.responses);
  if (view.chart) {
    view.chart.setAttribute('aria-label', [...view.fills.keys()].map((k) => k + ': ' + share(k) + '%').join(', '));
    const m = r.summary && r.summary.mean;
    view.mean.textContent = m == null ? '' : T.average + ' ' + mean1.format(m);
  }
}

function status() {
  const pending = Object.keys(outbox).length > 0;
  let text = fatal ? '' : note; // a fatal message is already announced as an alert
  let kind = text ? 'warn' : '';
  if (!text) {
    if (link !== 'open') {
      text = pending ? T.offline : T[link];
      kind = 'warn';
    } else if (pending) {
      text = T.sending;
    } else if (question && counted[question.id] != null) {
      text = T.received;
      kind = 'ok';
    }
  }
  if (statusLine.textContent !== text) statusLine.textContent = text;
  statusLine.dataset.kind = kind;
}

// --- connection ----------------------------------------------------------

async function join() {
  let wait = 1000;
  for (;;) {
    let res = null;
    let body = {};
    try {
      res = await fetch(cfg.join_url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'application/json' },
      });
      body = await res.json().catch(() => ({}));
    } catch {} // offline: the status line already says so; try again below
    if (res && res.ok && body.token) {
      token = body.token;
      save(TOKEN_KEY, token);
      note = '';
      return true;
    }
    const message = body.error && body.error.message;
    if (res && res.status === 404) {
      fail(message || T.notFound);
      return false;
    }
    let delay = wait;
    if (res && res.status === 429) delay = (parseFloat(res.headers.get('Retry-After')) || 5) * 1000;
    else wait = Math.min(wait * 2, 15000);
    note = res ? message || T.joinFailed : '';
    status();
    await new Promise((done) => setTimeout(done, delay * (1 + Math.random() / 4)));
  }
}

function fail(message) {
  fatal = message;
  build();
}

const sock = openSocket(
  // lang picks the language of the server's error messages.
  () => `${cfg.ws_path}?token=${encodeURIComponent(token)}&lang=${encodeURIComponent(cfg.lang)}`,
  {
    heartbeat: true,
    onMessage,
    onOpen: flush,
    onStatus(s) {
      link = s;
      status();
    },
    onClose(e) {
      if (e.code === 4401) {
        token = null;
        save(TOKEN_KEY, null);
        join().then((ok) => ok && sock.start());
        return false;
      }
      if (e.code === 4404) {
        fail(T.notFound);
        return false;
      }
    },
  },
);

status();
if (token || (await join())) sock.start();
