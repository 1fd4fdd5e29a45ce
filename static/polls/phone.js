import { openSocket } from './socket.js';
import { solve } from './work.js';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const app = $('zp-app');
const statusLine = $('zp-status');
const num = new Intl.NumberFormat(cfg.lang);
const mean1 = new Intl.NumberFormat(cfg.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const dec1 = new Intl.NumberFormat(cfg.lang, { maximumFractionDigits: 1 });
const signed = new Intl.NumberFormat(cfg.lang, { signDisplay: 'exceptZero' });
const TOKEN_KEY = 'zp-token-' + cfg.code;
const OUTBOX_KEY = 'zp-outbox-' + cfg.code;
const REJECTED = new Set([
  'not_open', 'unknown_question', 'bad_value', 'too_long', 'empty',
  'bad_message', 'bad_json', 'too_large', 'unknown_type', 'not_allowed',
]);
const SCALES = ['scale', 'nps', 'enps', 'ces'];
const PCT = ['split', 'percentage', 'shares']; // research metrics in percent
const GROUPS = ['promoters', 'passives', 'detractors'];

let token = load(TOKEN_KEY);
// Attendee-list events: the personal code from a badge link (?a=...), kept for this event and
// taken out of the address bar (a photo of the screen must not pass it on).
const CODE_KEY = 'zp-attendee-' + cfg.code;
const params = new URLSearchParams(location.search);
let attendee = params.get('a') || load(CODE_KEY);
if (params.has('a')) {
  // Another attendee's badge on a phone that joined before: their voice, not the last one's
  // (nor the last one's unsent answers).
  if (cfg.attendees && attendee !== load(CODE_KEY)) {
    token = null;
    save(TOKEN_KEY, null);
    save(OUTBOX_KEY, null);
  }
  save(CODE_KEY, attendee);
  params.delete('a');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
}
let outbox = {}; // question id -> latest answer message not yet acknowledged
try {
  outbox = JSON.parse(load(OUTBOX_KEY)) || {};
} catch {}
let question = null;
const counted = {}; // question id -> answer the server has confirmed
const results = {}; // question id -> latest results snapshot
// The attendee's unsent edit of the current question: a Set of ids (multiple), the typed
// text (text), or the whole value being built (split, ranking, quadrant).
let draft = null;
let link = 'connecting';
let note = ''; // server message shown until the next action
let asking = false; // the code form is the page: the status line has nothing to add
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

function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

// A translated template with {name} placeholders.
const t = (key, vals) => T[key].replace(/\{(\w+)\}/g, (m, k) => (k in vals ? vals[k] : m));

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

const sorted = (v) => [...v].sort((a, b) => a - b);
// Order matters for a ranking, not for multiple choice; a quadrant's keys may come in any order.
function canon(v) {
  if (Array.isArray(v)) return question.kind === 'multiple' ? sorted(v) : v;
  if (v && typeof v === 'object') return Object.keys(v).sort().map((k) => [k, v[k].x, v[k].y]);
  return v;
}
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));

function mine() {
  if (!question) return null;
  const pending = outbox[question.id];
  return pending ? pending.value : (counted[question.id] ?? null);
}

// The value the controls show: the edit, else the answer, else a starting point.
function shown() {
  const q = question;
  const m = draft ?? mine();
  if (q.kind === 'split') return m ?? 50;
  if (q.kind === 'ranking') {
    const ids = q.options.map((o) => o.id);
    const order = Array.isArray(m) ? m.filter((id) => ids.includes(id)) : [];
    return [...order, ...ids.filter((id) => !order.includes(id))];
  }
  if (q.kind === 'quadrant') {
    const all = {};
    for (const o of q.options) {
      const p = m && m[o.id];
      all[o.id] = { x: p ? p.x : 50, y: p ? p.y : 50 };
    }
    return all;
  }
  return m;
}

// What the send button would send; null when there is nothing to send.
function toSend() {
  const k = question.kind;
  if (k === 'multiple') return draft && sorted(draft);
  if (k === 'text') return draft == null ? null : draft.trim() || null;
  return shown();
}

function limits() {
  const c = question.choices || {};
  return { min: c.min ?? 1, max: c.max ?? question.options.length };
}

const label = (id) => (question.options.find((o) => o.id === id) || {}).label || '';

function group(v) {
  if (typeof v !== 'number') return null;
  const p = question.kind === 'enps' ? 8 : 9;
  return GROUPS[v >= p ? 0 : v >= p - 2 ? 1 : 2];
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

function edit(value) {
  draft = value;
  update();
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
  const sent = outbox[m.question];
  if (sent && sent.id === m.id) {
    delete outbox[m.question];
    persist();
    // Keep an edit made while this answer was on its way.
    if (question && m.question === question.id && draft != null && same(toSend(), sent.value)) draft = null;
  }
  retryDelay = 2000;
  update();
}

function onError(m) {
  const entry = Object.values(outbox).find((a) => a.id === m.id);
  if (!entry && m.id) return; // about a superseded answer or a ping: nothing to tell
  if (m.code === 'revoked') return askAgain(m.message);
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
    // A rejected text stays in the field so the attendee can fix it.
    if (question && entry.question === question.id && question.kind !== 'text') draft = null;
  }
  note = m.message || '';
  update();
}

// --- rendering -----------------------------------------------------------

function build() {
  const focused = document.activeElement && document.activeElement.dataset.k;
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
    const k = q.kind;
    const box = el('section', 'zp-q');
    box.classList.toggle('zp-results', q.show_results);
    // Once voting closed, the results show the attendee's answer: the inputs only take room.
    box.classList.toggle('zp-done', q.show_results && !q.open);
    view = { buttons: new Map(), fills: new Map(), pcts: new Map(), meas: new Map() };
    const prompt = el('h1', 'zp-prompt', q.prompt);
    prompt.id = 'zp-prompt';
    box.append(prompt, (view.note = el('p', 'zp-note')));
    const hint = { multiple: '', ranking: T.rankHint, quadrant: T.quadHint }[k];
    if (hint != null) box.append((view.hint = el('p', 'zp-hint zp-in', hint)));
    if (SCALES.includes(k)) buildScale(q, box);
    else if (BUILD[k]) BUILD[k](q, box);
    else buildOptions(q, box);
    if (k === 'multiple') box.append(sendButton(T.send));
    if (q.show_results) {
      box.append((view.res = el('div', 'zp-res')), (view.total = el('p', 'zp-total')), (view.cmp = el('div')));
    }
    app.append(box);
  }
  update();
  const again = focused && app.querySelector(`[data-k="${focused}"]`);
  if (again) again.focus();
}

function sendButton(text) {
  view.send = el('button', 'zp-btn zp-primary zp-in', text);
  view.send.type = 'button';
  view.send.dataset.k = 'send';
  view.send.addEventListener('click', () => submit(toSend()));
  return view.send;
}

function ends(low, high) {
  const p = el('p', 'zp-ends');
  if (low || high) p.append(el('span', '', low), el('span', '', high));
  return p;
}

function range(key, name) {
  const r = el('input', 'zp-range');
  r.type = 'range';
  r.min = 0;
  r.max = 100;
  r.step = 1;
  r.dataset.k = key;
  if (name) r.setAttribute('aria-label', name);
  else r.setAttribute('aria-labelledby', 'zp-prompt');
  return r;
}

function setRange(r, v, open) {
  if (+r.value !== v) r.value = v;
  r.style.setProperty('--v', v + '%');
  r.disabled = !open;
}

function buildOptions(q, box) {
  const list = el('div', 'zp-opts');
  for (const o of q.options) {
    const b = el('button', 'zp-opt');
    b.type = 'button';
    const fill = el('span', 'zp-fill');
    b.append(fill, el('span', 'zp-label', o.label));
    if (q.show_results) {
      const key = String(o.id);
      const pct = el('span', 'zp-pct');
      const meas = el('span', 'zp-meas');
      b.append(pct, meas);
      view.fills.set(key, fill);
      view.pcts.set(key, pct);
      view.meas.set(o.id, meas);
    }
    b.addEventListener('click', () => tap(o.id));
    view.buttons.set(o.id, b);
    list.append(b);
  }
  box.append(list);
}

function buildScale(q, box) {
  const s = q.scale || { min: 0, max: 10 };
  const { min, max } = s;
  const n = max - min + 1;
  const cols = n <= 6 ? n : Math.ceil(n / 2);
  const grid = el('div', 'zp-scale');
  grid.style.setProperty('--cols', cols);
  const chart = el('div', 'zp-chart');
  chart.setAttribute('role', 'img');
  chart.style.setProperty('--start', min - 1); // CSS counters number the columns
  const e = ends(s.min_label, s.max_label);
  const [lo, hi] = e.children;
  for (let v = min; v <= max; v++) {
    const b = el('button', 'zp-num', String(v));
    b.type = 'button';
    // An odd count ends on the right: the second row starts one column in.
    if (n > 6 && n % 2 && v === min + cols) b.style.gridColumnStart = 2;
    const end = v === min ? lo : v === max ? hi : null;
    if (end) b.setAttribute('aria-describedby', (end.id = 'zp-end' + v));
    b.addEventListener('click', () => tap(v));
    view.buttons.set(v, b);
    grid.append(b);
    const col = el('span', 'zp-col');
    const fill = el('span', 'zp-fill');
    col.append(fill);
    chart.append(col);
    view.fills.set(String(v), fill);
  }
  box.append(grid, e);
  if (q.show_results && (q.kind === 'scale' || q.kind === 'ces')) {
    view.chart = chart;
    view.mean = el('p', 'zp-mean');
    box.append(chart, view.mean);
  }
}

const BUILD = {
  split(q, box) {
    const s = q.split || {};
    const r = range('split');
    r.classList.add('zp-in');
    const val = el('p', 'zp-split zp-in');
    val.setAttribute('aria-hidden', 'true'); // the slider announces the same text
    const parts = (s.b ? [s.a, s.b] : [s.a || '']).map((name) => { // plain guess: one part
      const part = el('span');
      const n = el('b', 'zp-big');
      part.append(el('span', '', name), n);
      val.append(part);
      return n;
    });
    r.addEventListener('input', () => edit(+r.value));
    box.append(val, r, sendButton(T.send));
    view.sync = (open) => {
      const v = shown();
      setRange(r, v, open);
      parts.forEach((n, i) => (n.textContent = (i ? 100 - v : v) + '%'));
      r.setAttribute('aria-valuetext', s.b ? `${s.a} ${v}% · ${s.b} ${100 - v}%` : v + '%');
    };
  },

  text(q, box) {
    const max = (q.text && q.text.max_length) || 40;
    const form = el('form', 'zp-form');
    const input = el('input', 'zp-text zp-in');
    input.type = 'text';
    input.maxLength = max;
    input.autocomplete = 'off';
    input.enterKeyHint = 'send';
    input.dataset.k = 'text';
    input.value = draft ?? '';
    input.setAttribute('aria-labelledby', 'zp-prompt');
    input.setAttribute('aria-describedby', 'zp-count');
    const count = el('p', 'zp-count zp-in');
    count.id = 'zp-count';
    const yours = el('p', 'zp-you');
    input.addEventListener('input', () => edit(input.value));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      view.send.click(); // does nothing while disabled
    });
    form.append(input, count, sendButton(T.send), yours);
    box.append(form);
    view.sync = (open) => {
      if (draft == null) input.value = '';
      input.disabled = !open;
      input.setAttribute('aria-invalid', !!note);
      count.textContent = `${input.value.length} / ${max}`;
      const c = counted[q.id];
      yours.textContent = c == null ? '' : t('yourAnswer', { text: c });
    };
  },

  ranking(q, box) {
    const list = el('ol', 'zp-list zp-in');
    const rows = new Map();
    const live = el('p', 'zp-sr');
    live.setAttribute('aria-live', 'polite');
    const move = (id, d) => {
      const order = shown();
      const i = order.indexOf(id);
      const j = i + d;
      if (j < 0 || j >= order.length) return;
      [order[i], order[j]] = [order[j], order[i]];
      edit(order);
      const r = rows.get(id);
      const b = d < 0 ? r.up : r.down; // moving the row took its focus away
      (b.disabled ? (d < 0 ? r.down : r.up) : b).focus();
      live.textContent = t('moved', { label: label(id), n: j + 1 });
    };
    for (const o of q.options) {
      const li = el('li', 'zp-rrow');
      const n = el('span', 'zp-rnum');
      const up = el('button', 'zp-mv', '▲');
      const down = el('button', 'zp-mv', '▼');
      [up, down].forEach((b, i) => {
        b.type = 'button';
        b.dataset.k = (i ? 'd' : 'u') + o.id;
        b.setAttribute('aria-label', t(i ? 'moveDown' : 'moveUp', { label: o.label }));
        b.addEventListener('click', () => move(o.id, i ? 1 : -1));
      });
      li.append(n, el('span', 'zp-label', o.label), up, down);
      rows.set(o.id, { li, n, up, down });
    }
    box.append(list, live, sendButton(T.sendRanking));
    view.sync = (open) => {
      const order = shown();
      order.forEach((id, i) => {
        const r = rows.get(id);
        if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
        r.n.textContent = i + 1;
        r.up.disabled = !open || i === 0;
        r.down.disabled = !open || i === order.length - 1;
      });
    };
  },

  quadrant(q, box) {
    const Q = q.quadrant || {};
    const list = el('ol', 'zp-list zp-in');
    const axes = [];
    q.options.forEach((o, i) => {
      const li = el('li', 'zp-card');
      const h = el('h2', 'zp-item');
      h.append(el('span', 'zp-badge', String(i + 1)), o.label);
      li.append(h);
      for (const ax of ['x', 'y']) {
        const r = range(`q${o.id}${ax}`, `${o.label}: ${Q[ax]}`);
        const out = el('span', 'zp-v');
        const head = el('p', 'zp-axl');
        head.append(el('span', '', Q[ax]), out);
        r.addEventListener('input', () => {
          const v = shown();
          v[o.id][ax] = +r.value;
          edit(v);
        });
        li.append(head, r, ends(Q[ax + '_low'], Q[ax + '_high']));
        axes.push({ id: o.id, ax, r, out });
      }
      list.append(li);
    });
    const preview = el('div', 'zp-in');
    box.append(list, preview, sendButton(T.send));
    view.sync = (open) => {
      const v = shown();
      for (const a of axes) {
        setRange(a.r, v[a.id][a.ax], open);
        a.out.textContent = v[a.id][a.ax];
      }
      preview.replaceChildren(quad(q, q.options.map((o, i) => ({ n: i + 1, ...v[o.id] }))));
    };
  },
};

// A 2x2 field: numbered dots (pts) and, for the results, the attendee's own points as rings.
function quad(q, pts, rings = [], name = '') {
  const Q = q.quadrant || {};
  const box = el('div', 'zp-quad');
  const pic = svg('svg', { viewBox: '-7 -7 114 114' });
  if (name) {
    pic.setAttribute('role', 'img');
    pic.setAttribute('aria-label', name);
  } else pic.setAttribute('aria-hidden', 'true');
  pic.append(svg('rect', { class: 'zp-qbg', width: 100, height: 100 }), svg('path', { class: 'zp-qline', d: 'M50 0V100M0 50H100' }));
  for (const p of rings) {
    const to = pts.find((d) => d.n === p.n); // a line from the attendee's point to the room's
    if (to) pic.append(svg('path', { class: 'zp-qline', d: `M${p.x} ${100 - p.y}L${to.x} ${100 - to.y}` }));
    const txt = svg('text', { class: 'zp-rn', x: p.x, y: 100 - p.y });
    txt.textContent = p.n;
    pic.append(svg('circle', { class: 'zp-ring', cx: p.x, cy: 100 - p.y, r: 5 }), txt);
  }
  for (const p of pts) {
    const txt = svg('text', { x: p.x, y: 100 - p.y });
    txt.textContent = p.n;
    pic.append(svg('circle', { class: 'zp-dot', cx: p.x, cy: 100 - p.y, r: 5 }), txt);
  }
  const y = el('p', 'zp-qy');
  y.append(el('span', '', Q.y_low), el('b', '', Q.y), el('span', '', Q.y_high));
  const x = el('p', 'zp-qx');
  x.append(el('span', '', Q.x_low), el('b', '', Q.x), el('span', '', Q.x_high));
  box.append(y, pic, x);
  return box;
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
    view.hint.textContent = t(min === max ? 'exactly' : min <= 1 ? 'upTo' : 'between', { n: max, min, max });
    view.hint.classList.toggle('zp-warn', chosen.size > max);
  }
  if (view.sync) view.sync(q.open);
  if (view.send) {
    const v = toSend();
    view.send.disabled =
      !q.open || v == null || (chosen && (chosen.size < limits().min || chosen.size > limits().max)) || same(v, current);
  }
  view.note.textContent = q.open ? '' : q.state === 'draft' ? T.waiting : T.closed;
  if (view.chart) {
    view.chart.childNodes.forEach((col, i) => col.classList.toggle('zp-mine', current === q.scale.min + i));
  }
  paint();
}

const pct = (v) => (v == null ? '–' : dec1.format(v) + '%');

// Result rows: [{label, value, p (0..1), mine, sub}]
function rows(items) {
  const list = el('ol', 'zp-list');
  for (const r of items) {
    const li = el('li', 'zp-row' + (r.mine ? ' zp-mine' : ''));
    const fill = el('span', 'zp-fill');
    fill.style.setProperty('--p', r.p || 0);
    li.append(fill, el('span', 'zp-label', r.label), el('span', 'zp-pct', r.value), el('span', 'zp-meas', r.sub));
    list.append(li);
  }
  return list;
}

function paint() {
  const q = question;
  const r = view && q.show_results && results[q.id];
  if (!r) return;
  const sum = r.summary || {};
  const shares = sum.percent || {};
  const share = (k) => shares[k] ?? (r.total ? Math.round((100 * (r.counts[k] || 0)) / r.total) : 0);
  // Columns are scaled to the tallest so a spread-out distribution stays visible.
  let top = 100;
  if (view.chart) top = Math.max(1, ...[...view.fills.keys()].map(share));
  for (const [k, fill] of view.fills) fill.style.setProperty('--p', share(k) / top);
  for (const [k, span] of view.pcts) span.textContent = share(k) + '%';
  view.total.textContent = num.format(r.total) + ' ' + (r.total === 1 ? T.response : T.responses);
  if (view.chart) {
    view.chart.setAttribute('aria-label', [...view.fills.keys()].map((k) => k + ': ' + share(k) + '%').join(', '));
    const m = sum.mean;
    view.mean.textContent = m == null ? '' : T.average + ' ' + mean1.format(m);
  }
  const my = mine();
  const k = q.kind;
  const out = [];
  const you = (v) => out.push(el('p', 'zp-you', t('you', { v })));
  if (k === 'nps' || k === 'enps') {
    const big = el('p', 'zp-big');
    big.append(el('span', 'zp-k', T[k] + ' '), sum.score == null ? '–' : signed.format(sum.score));
    const g = group(my);
    out.push(big, rows(GROUPS.map((n) => ({ label: T[n], value: pct(sum[n] ?? 0), p: (sum[n] || 0) / 100, mine: g === n }))));
  } else if (k === 'split') {
    const s = q.split || {};
    const a = sum.mean_a;
    const big = el('p', 'zp-big zp-center', a == null ? '–' : s.b ? `${dec1.format(a)} / ${dec1.format(sum.mean_b)}` : pct(a));
    const bar = el('div', 'zp-sbar');
    bar.style.setProperty('--v', (a || 0) + '%');
    if (my != null) {
      const tick = el('span', 'zp-tick');
      tick.style.setProperty('--m', my + '%');
      bar.append(tick);
    }
    out.push(big, bar, s.b ? ends(s.a, s.b) : el('p', 'zp-hint zp-center', T.average));
  } else if (k === 'text') {
    const words = (sum.words || []).slice(0, 10);
    const most = words.length ? words[0].count : 1;
    const own = new Set(String(my ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u));
    const isOwn = (w) => own.has(w.word.toLowerCase()) || own.has(String(w.key).toLowerCase()); // key: "k**" unmasked
    out.push(rows(words.map((w) => ({ label: w.word, value: num.format(w.count), p: w.count / most, mine: isOwn(w) }))));
  } else if (k === 'ranking') {
    const items = sum.items || [];
    const most = Math.max(1, ...items.map((i) => i.points));
    const order = Array.isArray(my) ? my : [];
    out.push(rows(items.map((i, n) => ({
      label: `${n + 1}. ${label(i.id)}`,
      value: t(i.points === 1 ? 'point' : 'points', { n: num.format(i.points) }),
      p: i.points / most,
      sub: order.includes(i.id) ? t('you', { v: order.indexOf(i.id) + 1 }) : '',
    }))));
  } else if (k === 'quadrant') {
    const at = (id) => q.options.findIndex((o) => o.id === id) + 1;
    const items = (sum.items || []).filter((i) => i.x != null);
    const own = my ? q.options.map((o, i) => my[o.id] && { n: i + 1, ...my[o.id] }).filter(Boolean) : [];
    const Q = q.quadrant || {};
    const name = items.map((i) => `${label(i.id)}: ${Q.x} ${dec1.format(i.x)}, ${Q.y} ${dec1.format(i.y)}`);
    const legend = el('p', 'zp-hint zp-center', `● ${T.room}` + (own.length ? `   ○ ${T.mine}` : ''));
    const list = el('ol', 'zp-list zp-legend');
    q.options.forEach((o, i) => {
      const li = el('li', 'zp-item');
      li.append(el('span', 'zp-badge', String(i + 1)), o.label);
      list.append(li);
    });
    out.push(quad(q, items.map((i) => ({ n: at(i.id), x: i.x, y: i.y })), own, name.join('; ')), legend, list);
  }
  if (SCALES.includes(k) && my != null) you(my);
  if (k === 'split' && my != null) you(q.split && q.split.b ? `${my} / ${100 - my}` : my + '%');
  if (k === 'ces' && q.scale && q.scale.lower_is_better) out.push(el('p', 'zp-hint', T.lowerBetter));
  view.res.replaceChildren(...out);
  reveal(q, r, my);
}

function fmt(m, v, f) {
  if (v == null) return '–';
  if (m === 'nps') return signed.format(Math.round(v));
  return (PCT.includes(m) ? dec1 : mean1).format(v) + (PCT.includes(m) ? '%' : f.unit || '');
}

// After the reveal: the research figure beside the room, and where the attendee's answer sits.
function reveal(q, r, my) {
  const figs = q.figures || [];
  const cs = r.comparison || [];
  view.meas.forEach((span) => (span.textContent = ''));
  if (!q.revealed || !figs.length || !cs.length) return view.cmp.replaceChildren();
  const c = cs[cs.length - 1];
  const f = figs.find((x) => x.id === c.figure) || figs[figs.length - 1];
  const m = c.metric || f.metric;
  const card = el('section', 'zp-cmp');
  card.append(el('h2', '', T.research), el('p', 'zp-cmp-l', f.label));
  const opts = c.options || [];
  if (m === 'shares') {
    for (const o of opts) {
      const span = view.meas.get(o.id);
      if (span) span.textContent = `${T.measured} ${fmt(m, o.measured, f)}`;
    }
    // room/measured describe the option with the largest gap
    const gap = opts.reduce((a, o) => (a && Math.abs(a.difference) >= Math.abs(o.difference) ? a : o), null);
    if (gap) card.append(el('p', 'zp-hint', label(gap.id)));
  }
  const nums = el('dl', 'zp-nums');
  for (const [name, v] of [[T.room, c.room], [T.measured, c.measured]]) {
    const d = el('div');
    d.append(el('dt', '', name), el('dd', '', fmt(m, v, f)));
    nums.append(d);
  }
  card.append(nums);
  if (figs.length > 1 && m !== 'shares') {
    card.append(el('p', 'zp-hint', figs.map((x) => `${x.year}: ${fmt(x.metric, x.value, x)}`).join(' · ')));
  }
  const words = c.words && (c.words[cfg.lang] || c.words.en);
  if (words) card.append(el('p', 'zp-words', words));
  for (const s of yours(q, c, f, m, my)) card.append(el('p', 'zp-you', s));
  const s = f.study;
  if (s) {
    const line = [s.title, [s.publisher, s.year].filter(Boolean).join(', ')].filter(Boolean).join(' — ');
    const src = el('p', 'zp-src');
    if (/^https?:\/\//.test(s.url || '')) {
      const a = el('a', '', line);
      a.href = s.url;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      src.append(a);
    } else src.textContent = line;
    card.append(src);
  }
  view.cmp.replaceChildren(card);
}

function yours(q, c, f, m, my) {
  if (my == null) return [];
  if (m === 'shares') {
    const opts = c.options || [];
    return (Array.isArray(my) ? my : [my])
      .map((id) => opts.find((o) => o.id === id))
      .filter(Boolean)
      .map((o) => t('youShare', { you: label(o.id), measured: fmt(m, o.measured, f) }));
  }
  if (typeof my !== 'number' || !(q.kind === 'split' || SCALES.includes(q.kind))) return [];
  // One answer cannot have an NPS of its own: say which group it falls in.
  if (m === 'nps') {
    const g = group(my);
    return [t('you' + g[0].toUpperCase() + g.slice(1), { you: my })];
  }
  const measured = c.measured ?? f.value;
  if (measured == null) return [];
  const d = Math.round((my - measured) * 10) / 10; // yours - measured
  const points = PCT.includes(m);
  const n = dec1.format(Math.abs(d));
  return [
    t(d > 0 ? 'youMore' : d < 0 ? 'youLess' : 'youExact', {
      you: points ? my + '%' : num.format(my),
      diff: points ? t(Math.abs(d) === 1 ? 'pp1' : 'pp', { n }) : n,
      measured: fmt(m, measured, f),
    }),
  ];
}

function status() {
  const pending = Object.keys(outbox).length > 0;
  let text = fatal || asking ? '' : note; // a fatal message is already announced as an alert
  let kind = text ? 'warn' : '';
  if (!text && !asking) {
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
  let work = null; // the proof of work a busy network's joins carry (polls/joinguard.py)
  let refused = ''; // a code the server refused, left in the field to be corrected
  for (;;) {
    if (cfg.attendees && !attendee) attendee = await askCode(note, refused);
    const payload = {};
    if (cfg.attendees) payload.attendee = attendee;
    if (work) payload.work = { challenge: work.challenge, nonce: await solve(work) };
    work = null;
    let res = null;
    let body = {};
    try {
      res = await fetch(cfg.join_url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
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
    const code = body.error && body.error.code;
    if (res && res.status === 404) {
      fail(message || T.notFound);
      return false;
    }
    note = res ? message || T.joinFailed : '';
    if (code === 'work_required' && body.work) {
      work = body.work;
      status();
      continue;
    }
    if (code === 'attendee_code') {
      refused = attendee;
      attendee = null;
      save(CODE_KEY, null);
      continue;
    }
    let delay = wait;
    if (res && res.status === 429) delay = (parseFloat(res.headers.get('Retry-After')) || 5) * 1000;
    else wait = Math.min(wait * 2, 15000);
    status();
    await new Promise((done) => setTimeout(done, delay * (1 + Math.random() / 4)));
  }
}

// The personal code an attendee-list event asks for, typed (resolves once submitted).
function askCode(message, typed) {
  return new Promise((done) => {
    const form = el('form', 'zp-join');
    const label = el('label', null, T.codeLabel);
    label.htmlFor = 'zp-acode';
    const input = el('input', 'zp-code-input');
    // As much as the server reads (attendees.MAX_TYPED_CHARS): a badge prints a 16-character
    // code in groups of five, 19 characters with the dashes.
    Object.assign(input, { id: 'zp-acode', maxLength: 64, autocomplete: 'off', spellcheck: false, value: typed || '' });
    input.setAttribute('autocapitalize', 'characters');
    const fit = () => input.style.setProperty('--n', Math.max(11, input.value.length));
    input.addEventListener('input', fit);
    fit();
    form.append(label, input);
    if (message) {
      const error = el('p', 'zp-error', message);
      error.setAttribute('role', 'alert');
      input.setAttribute('aria-invalid', 'true');
      form.append(error);
    }
    const button = el('button', 'zp-btn zp-primary', T.join);
    button.type = 'submit';
    form.append(button);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const typed = input.value.trim();
      if (!typed) return;
      note = '';
      asking = false;
      save(CODE_KEY, typed);
      app.replaceChildren(el('p', 'zp-wait', T.connecting));
      status();
      done(typed);
    });
    app.replaceChildren(form);
    asking = true;
    status();
    input.focus();
  });
}

// A personal code withdrawn while the page was open: nothing sent under it will count, so
// the page forgets the code, its token and its answers, and asks for a code again (a new
// code's own answers come with its first state).
function askAgain(message) {
  sock.stop();
  outbox = {};
  persist();
  for (const id in counted) delete counted[id];
  draft = null;
  token = attendee = null;
  save(TOKEN_KEY, null);
  save(CODE_KEY, null);
  note = message || '';
  join().then((ok) => ok && sock.start());
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
    // Where WebSockets are blocked: server-sent events and POSTs next to the join URL.
    fallback: cfg.join_url.replace(/join$/, ''),
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
