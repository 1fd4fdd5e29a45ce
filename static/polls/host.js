import { openSocket } from './socket.js';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const renderedKey = $('zp-host').dataset.key;
const box = $('zp-results'); // absent when no question is current
const count = $('zp-count');
const countLabel = $('zp-count-label');
const linkState = $('zp-link');
const form = $('zp-controls');
const num = new Intl.NumberFormat(cfg.lang);
const mean1 = new Intl.NumberFormat(cfg.lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

let question = null;
let view = null;
let leaving = false;
const results = {};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// One press per page: a second tap while the first POST travels would act twice.
form.addEventListener('submit', (e) => {
  if (leaving) e.preventDefault();
  leaving = true;
});

// The buttons were rendered for one question and state; when the live state differs
// (changed from admin or another device), fetch a fresh page. Guarded against reload loops.
function reloadSoon() {
  if (leaving) return;
  leaving = true;
  let last = 0;
  try {
    last = Number(sessionStorage.getItem('zp-host-reload')) || 0;
  } catch {}
  setTimeout(() => {
    try {
      sessionStorage.setItem('zp-host-reload', String(Date.now()));
    } catch {}
    location.replace(location.href); // a GET, never a resubmitted POST
  }, Math.max(0, last + 5000 - Date.now()));
}

function onMessage(m) {
  if (m.type === 'state') {
    const q = m.question;
    const key = q ? `${q.id}|${q.open ? 1 : 0}|${q.show_results ? 1 : 0}` : '||';
    if (key !== renderedKey) return reloadSoon();
    if (!view && q && box) build(q);
    question = q;
    paint();
  } else if (m.type === 'results') {
    const old = results[m.question];
    if (old && m.version < old.version) return;
    results[m.question] = m;
    if (question && m.question === question.id) paint();
  }
}

function build(q) {
  view = { fills: new Map(), pcts: new Map() };
  if (q.kind === 'scale') {
    view.mean = el('p', 'hs-mean');
    const cols = el('div', 'hs-cols');
    for (let v = q.scale.min; v <= q.scale.max; v++) {
      const col = el('span', 'hs-col');
      const fill = el('span', 'hs-fill');
      col.append(fill, el('span', 'hs-val', String(v)));
      cols.append(col);
      view.fills.set(String(v), fill);
    }
    box.append(view.mean, cols);
    view.scale = true;
    return;
  }
  for (const o of q.options) {
    const row = el('div', 'hs-row');
    const pct = el('b', 'hs-pct');
    const bar = el('span', 'hs-bar');
    const fill = el('span', 'hs-fill');
    bar.append(fill);
    row.append(el('span', 'hs-label', o.label), pct, bar);
    box.append(row);
    view.fills.set(String(o.id), fill);
    view.pcts.set(String(o.id), pct);
  }
}

function paint() {
  const r = question && results[question.id];
  if (!r || !count) return;
  count.textContent = num.format(r.total);
  countLabel.textContent = r.total === 1 ? T.response : T.responses;
  if (!view) return;
  const pct = (r.summary && r.summary.percent) || {};
  const share = (k) => pct[k] ?? (r.total ? Math.round((100 * (r.counts[k] || 0)) / r.total) : 0);
  const top = view.scale ? Math.max(1, ...[...view.fills.keys()].map(share)) : 100;
  for (const [k, fill] of view.fills) fill.style.setProperty('--p', share(k) / top);
  for (const [k, b] of view.pcts) b.textContent = `${share(k)}% · ${num.format(r.counts[k] || 0)}`;
  if (view.mean) {
    const m = r.summary && r.summary.mean;
    view.mean.textContent = m == null ? '' : `${T.average} ${mean1.format(m)}`;
  }
}

openSocket(cfg.ws_path, {
  heartbeat: true, // any reply proves the link; see stage.js
  onMessage,
  onStatus(s) {
    linkState.textContent = T[s];
    linkState.dataset.state = s;
  },
}).start();
