import { openSocket } from './socket.js';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const root = $('zp-stage');
const area = $('zp-q');
const idle = area.firstElementChild; // detached while a question shows: keep the reference
const eventTitle = idle.querySelector('.st-event');
const badge = $('zp-badge');
const pos = $('zp-pos');
const counter = $('zp-foot');
const count = $('zp-count');
const countLabel = $('zp-count-label');
const conn = $('zp-conn');
const fsButton = $('zp-fs');
const num = new Intl.NumberFormat(cfg.lang);
const mean1 = new Intl.NumberFormat(cfg.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

let question = null;
let shape = ''; // what the built view shows; only a new shape rebuilds (bars keep animating otherwise)
let view = null;
const results = {}; // question id -> latest snapshot

const code = $('zp-code');
code.style.setProperty('--len', code.textContent.trim().length); // CSS fits the code to the strip

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function onMessage(m) {
  if (m.type === 'state') {
    if (m.event && m.event.title) eventTitle.textContent = m.event.title;
    question = m.question;
    const q = question;
    const next = q ? JSON.stringify([q.id, q.kind, q.prompt, q.options, q.scale]) : '';
    if (next !== shape) {
      shape = next;
      build();
    }
    update();
  } else if (m.type === 'results') {
    const old = results[m.question];
    if (old && m.version < old.version) return;
    results[m.question] = m;
    if (question && question.id === m.question) update();
  }
}

function build() {
  root.classList.toggle('st-is-idle', !question);
  view = null;
  if (!question) {
    area.replaceChildren(idle);
    return;
  }
  const q = question;
  const prompt = el('h1', 'st-prompt', q.prompt);
  if (q.prompt.length > 140) prompt.classList.add('st-longer');
  else if (q.prompt.length > 70) prompt.classList.add('st-long');
  view = { fills: new Map(), pcts: new Map(), counts: new Map() };
  area.replaceChildren(prompt, q.kind === 'scale' ? buildScale(q) : buildOptions(q));
}

function buildOptions(q) {
  const list = el('ol', 'st-opts');
  list.style.setProperty('--n', q.options.length);
  list.classList.toggle('st-many', q.options.length > 4);
  for (const o of q.options) {
    const key = String(o.id);
    const track = el('span', 'st-track');
    const fill = el('span', 'st-fill');
    track.append(fill);
    const pct = el('b', 'st-pct', '0%');
    const cnt = el('span', 'st-cnt', '0');
    const li = el('li', 'st-opt');
    li.append(el('span', 'st-label', o.label), track, pct, cnt);
    list.append(li);
    view.fills.set(key, fill);
    view.pcts.set(key, pct);
    view.counts.set(key, cnt);
  }
  return list;
}

function buildScale(q) {
  const { min, max } = q.scale;
  const cols = el('div', 'st-cols');
  cols.style.setProperty('--n', max - min + 1);
  for (let v = min; v <= max; v++) {
    const key = String(v);
    const pct = el('span', 'st-cpct', '0%');
    const bar = el('span', 'st-bar');
    const fill = el('span', 'st-fill');
    bar.append(fill);
    const col = el('div', 'st-col');
    col.append(pct, bar, el('span', 'st-val', key));
    cols.append(col);
    view.fills.set(key, fill);
    view.pcts.set(key, pct);
  }
  const ends = el('div', 'st-ends');
  ends.append(el('span', '', q.scale.min_label), el('span', '', q.scale.max_label));
  const chart = el('div', 'st-chart');
  chart.append(cols, ends);
  view.mean = el('b', 'st-mean-val', '–');
  const mean = el('div', 'st-mean');
  mean.append(view.mean, el('span', 'st-mean-label', T.average));
  view.scale = true;
  const wrap = el('div', 'st-scale');
  wrap.append(chart, mean);
  return wrap;
}

function update() {
  const q = question;
  counter.hidden = !q;
  badge.hidden = !q;
  pos.textContent = q && q.count ? q.position + ' / ' + q.count : '';
  if (q) {
    const state = q.open ? 'open' : q.state === 'draft' ? 'soon' : 'closed';
    badge.textContent = T[state];
    badge.dataset.state = state;
  }
  paint();
}

function paint() {
  const r = question && results[question.id];
  const total = r ? r.total : 0;
  count.textContent = num.format(total);
  countLabel.textContent = total === 1 ? T.response : T.responses;
  if (!view) return;
  const pct = (r && r.summary && r.summary.percent) || {};
  const counts = (r && r.counts) || {};
  const share = (k) => pct[k] ?? (total ? Math.round((100 * (counts[k] || 0)) / total) : 0);
  // Columns are scaled to the tallest so the shape of the distribution fills the chart.
  const top = view.scale ? Math.max(1, ...[...view.fills.keys()].map(share)) : 100;
  for (const [k, fill] of view.fills) fill.style.setProperty('--p', share(k) / top);
  for (const [k, span] of view.pcts) span.textContent = share(k) + '%';
  for (const [k, span] of view.counts) span.textContent = num.format(counts[k] || 0);
  if (view.mean) {
    const m = r && r.summary && r.summary.mean;
    view.mean.textContent = m == null ? '–' : mean1.format(m);
  }
}

// --- projector comforts ----------------------------------------------------

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
}
fsButton.addEventListener('click', toggleFullscreen);
document.addEventListener('fullscreenchange', () => {
  fsButton.textContent = document.fullscreenElement ? T.exitFullscreen : T.fullscreen;
});
addEventListener('keydown', (e) => {
  if ((e.key || '').toLowerCase() === 'f' && !e.ctrlKey && !e.metaKey && !e.altKey) toggleFullscreen();
});

// Hide the pointer and the button while the mouse rests, so nothing floats over the projection.
let stillTimer = 0;
function stir() {
  document.body.classList.remove('st-still');
  clearTimeout(stillTimer);
  stillTimer = setTimeout(() => document.body.classList.add('st-still'), 3000);
}
addEventListener('pointermove', stir);
addEventListener('keydown', stir);
stir();

// The server answers anything a screen sends (with not_allowed); that reply is all the
// heartbeat needs to notice a dead link before the next question is missed.
openSocket(cfg.ws_path, {
  heartbeat: true,
  onMessage,
  onStatus(s) {
    conn.hidden = s !== 'reconnecting';
  },
}).start();
