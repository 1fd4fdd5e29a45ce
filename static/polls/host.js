import { numberFormats } from './format.js';
import { openSocket } from './socket.js';

const $ = (id) => document.getElementById(id);
const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const renderedKey = $('zp-host').dataset.key;
const box = $('zp-results'); // absent when no question is current
const wordList = $('zp-words'); // only for a word-cloud question
const count = $('zp-count');
const countLabel = $('zp-count-label');
const linkState = $('zp-link');
const lang = cfg.lang || document.documentElement.lang || 'en';
const { num, num1, mean1, signed, signed1 } = numberFormats(lang);
const csrfInput = document.querySelector('input[name="csrfmiddlewaretoken"]');

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

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const pct = (v) => (isNum(v) ? num1.format(v) + '%' : '–');

// One press per page: a second tap while the first POST travels would act twice.
// (Every form on the page: the controls and each word's Hide / Show again.)
document.addEventListener('submit', (e) => {
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
    const key = q ? `${q.id}|${q.open ? 1 : 0}|${q.show_results ? 1 : 0}|${q.revealed ? 1 : 0}` : '|||';
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

// --- the live mini view: the kind's headline figure, then a compact picture ----------

function build(q) {
  view = { fills: new Map(), pcts: new Map() };
  const head = el('p', 'hs-head');
  view.head = el('b', 'hs-head-val', '–');
  view.headLabel = el('span', 'hs-head-label');
  head.append(view.head, view.headLabel);
  const research = el('div', 'hs-research');
  research.hidden = true;
  view.research = research;
  const k = q.kind;
  if ((k === 'scale' || k === 'ces') && q.scale) {
    view.headLabel.textContent = T.average;
    const cols = el('div', 'hs-cols');
    for (let v = q.scale.min; v <= q.scale.max; v++) {
      const col = el('span', 'hs-col');
      const fill = el('span', 'hs-fill');
      col.append(fill, el('span', 'hs-val', String(v)));
      cols.append(col);
      view.fills.set(String(v), fill);
    }
    view.scale = true;
    box.append(head, cols, research);
  } else if (k === 'nps' || k === 'enps') {
    view.headLabel.textContent = k === 'enps' ? T.enps : T.nps;
    const tri = el('div', 'hs-tri');
    const key = el('p', 'hs-trikey');
    view.groups = ['detractors', 'passives', 'promoters'].map((name) => {
      const seg = el('span', `hs-seg hs-seg-${name}`);
      tri.append(seg);
      const text = el('span', `hs-tk hs-tk-${name}`);
      key.append(text);
      return { name, seg, text };
    });
    box.append(head, tri, key, research);
  } else if (k === 'split') {
    const sp = q.split || { a: '', b: '' };
    view.headLabel.textContent = sp.b ? `${sp.a} / ${sp.b}` : sp.a || T.average;
    const bar = el('span', 'hs-bar hs-splitbar');
    bar.classList.toggle('hs-plain', !sp.b);
    view.splitFill = el('span', 'hs-fill');
    bar.append(view.splitFill);
    box.append(head, bar, research);
  } else if (k === 'text') {
    view.head.classList.add('hs-head-text');
    view.headLabel.textContent = '';
    view.top = el('p', 'hs-top');
    box.append(head, view.top, research);
  } else if (k === 'ranking' || k === 'quadrant') {
    view.labels = new Map((q.options || []).map((o) => [String(o.id), o.label]));
    view.head.classList.add('hs-head-text');
    view.list = el('ol', 'hs-ranklist');
    box.append(...(k === 'ranking' ? [head, view.list, research] : [view.list, research]));
  } else {
    for (const o of q.options || []) {
      const row = el('div', 'hs-row');
      const p = el('b', 'hs-pct');
      const bar = el('span', 'hs-bar');
      const fill = el('span', 'hs-fill');
      bar.append(fill);
      row.append(el('span', 'hs-label', o.label), p, bar);
      box.append(row);
      view.fills.set(String(o.id), fill);
      view.pcts.set(String(o.id), p);
    }
    box.append(research);
  }
}

function paint() {
  const r = question && results[question.id];
  if (!r || !count) return;
  count.textContent = num.format(r.total);
  countLabel.textContent = r.total === 1 ? T.response : T.responses;
  if (wordList) paintWords(r);
  if (!view) return;
  const q = question;
  const s = r.summary || {};
  const k = q.kind;
  const p = s.percent || {};
  const counts = r.counts || {};
  const share = (key) => p[key] ?? (r.total ? Math.round((100 * (counts[key] || 0)) / r.total) : 0);
  const top = view.scale ? Math.max(1, ...[...view.fills.keys()].map(share)) : 100;
  for (const [key, fill] of view.fills) fill.style.setProperty('--p', share(key) / top);
  for (const [key, b] of view.pcts) b.textContent = `${share(key)}% · ${num.format(counts[key] || 0)}`;
  if (view.scale) {
    view.head.textContent = isNum(s.mean) ? mean1.format(s.mean) : '–';
  } else if (view.groups) {
    view.head.textContent = isNum(s.score) ? signed.format(s.score) : '–';
    for (const g of view.groups) {
      const v = isNum(s[g.name]) ? s[g.name] : 0;
      g.seg.style.flexGrow = String(v);
      g.text.textContent = `${T[g.name]} ${v}%`;
    }
  } else if (view.splitFill) {
    const a = isNum(s.mean_a) ? s.mean_a : null;
    const b = isNum(s.mean_b) ? s.mean_b : a == null ? null : 100 - a;
    view.head.textContent = a == null ? '–' : q.split && q.split.b ? `${num1.format(a)} / ${num1.format(b)}` : pct(a);
    view.splitFill.style.setProperty('--p', a == null ? 0 : Math.min(1, Math.max(0, a / 100)));
  } else if (view.top) {
    const words = Array.isArray(s.words) ? s.words : [];
    view.head.textContent = words.length ? words[0].word : '–';
    view.headLabel.textContent = words.length ? num.format(words[0].count) + '×' : T.noWords;
    view.top.textContent = words
      .slice(1, 8)
      .map((w) => `${w.word} ${num.format(w.count)}`)
      .join(' · ');
  } else if (view.list) {
    paintItems(q, s);
  }
  paintResearch(q, r);
}

function paintItems(q, s) {
  const items = Array.isArray(s.items) ? s.items : [];
  const rows = [];
  if (q.kind === 'ranking') {
    const first = items[0];
    view.head.textContent = first ? view.labels.get(String(first.id)) || '–' : '–';
    view.headLabel.textContent = first && isNum(first.mean_rank) ? `${T.meanRank} ${mean1.format(first.mean_rank)}` : '';
    items.forEach((it, i) => {
      const li = el('li', 'hs-item');
      li.append(
        el('span', 'hs-label', `${i + 1}. ${view.labels.get(String(it.id)) || ''}`),
        el('b', 'hs-pct', `${num.format(it.points || 0)} ${T.points}`),
      );
      rows.push(li);
    });
  } else {
    const arrows = { tl: '↖', tr: '↗', bl: '↙', br: '↘' };
    for (const it of items) {
      const qs = it.quadrants || {};
      let best = null;
      for (const c of ['tl', 'tr', 'bl', 'br']) if ((qs[c] || 0) > 0 && (!best || qs[c] > qs[best])) best = c;
      const li = el('li', 'hs-item');
      const axes = q.quadrant || {};
      const where =
        isNum(it.x) && isNum(it.y) ? `${axes.x || 'x'} ${num1.format(it.x)} · ${axes.y || 'y'} ${num1.format(it.y)}` : '–';
      li.append(
        el('span', 'hs-label', view.labels.get(String(it.id)) || ''),
        el('b', 'hs-pct', best ? `${where} ${arrows[best]}` : where),
      );
      rows.push(li);
    }
  }
  view.list.replaceChildren(...rows);
}

// Once revealed: the measured figure, the difference and the words the stage shows.
function paintResearch(q, r) {
  const cmps = Array.isArray(r.comparison) ? r.comparison : [];
  const c = q.revealed ? cmps[cmps.length - 1] : null;
  view.research.hidden = !c;
  if (!c) return;
  const f = (q.figures || []).find((x) => x.id === c.figure) || {};
  const fmt = (v) => {
    if (!isNum(v)) return '–';
    if (c.metric === 'nps') return signed.format(Math.round(v));
    if (c.metric === 'mean' || c.metric === 'ces') return mean1.format(v);
    if (c.metric === 'split' && q.split && q.split.b) return `${num1.format(v)} / ${num1.format(100 - v)}`;
    return pct(v);
  };
  const diff = isNum(c.difference)
    ? c.metric === 'mean' || c.metric === 'ces'
      ? signed1.format(c.difference)
      : signed.format(Math.round(c.difference))
    : '–';
  const source = [f.study && f.study.publisher, c.year ?? f.year].filter((x) => x != null && x !== '').join(' ');
  const line = el('p', 'hs-r-line');
  line.append(
    el('span', 'hs-r-kicker', `${T.research}${source ? ' · ' + source : ''}`),
    el('b', 'hs-r-val', fmt(c.measured)),
    el('span', '', `${T.room} ${fmt(c.room)} · ${T.difference} ${diff}`),
  );
  const said = c.words ? c.words[lang] || c.words.en || '' : '';
  view.research.replaceChildren(line, ...(said ? [el('p', 'hs-r-words', said)] : []));
}

// --- word cloud moderation: a Hide button per word ---------------------------------
// Rows keep their place (new words are added at the end) so a button never moves under a
// finger that is about to tap it; the page reloads after every hide anyway.

const wordRows = new Map(); // word as counted (summary key) -> { li, count }

function paintWords(r) {
  const words = r.summary && Array.isArray(r.summary.words) ? r.summary.words : [];
  const seen = new Set();
  for (const w of words) {
    if (!w || typeof w.key !== 'string' || !w.key) continue;
    seen.add(w.key);
    let row = wordRows.get(w.key);
    if (!row) {
      row = wordRow(w.key, w.word);
      wordRows.set(w.key, row);
      wordList.append(row.li);
    }
    row.count.textContent = num.format(Number(w.count) || 0);
    row.li.classList.remove('hs-gone');
  }
  for (const [key, row] of wordRows) {
    if (!seen.has(key)) {
      row.li.classList.add('hs-gone');
      row.count.textContent = '–';
    }
  }
  if (!wordRows.size && !wordList.childElementCount) wordList.append(el('li', 'hs-none', T.noWords));
  else if (wordRows.size) for (const n of wordList.querySelectorAll('.hs-none')) n.remove();
}

// The form posts the word as counted; the host sees it as the screens show it (masked).
function wordRow(key, shown) {
  const form = el('form', 'hs-wordform');
  form.method = 'post';
  const token = el('input');
  token.type = 'hidden';
  token.name = 'csrfmiddlewaretoken';
  token.value = csrfInput ? csrfInput.value : '';
  const value = el('input');
  value.type = 'hidden';
  value.name = 'word';
  value.value = key;
  const button = el('button', 'zp-btn', T.hide);
  button.name = 'action';
  button.value = 'hide_word';
  const cnt = el('b', 'hs-wcount', '0');
  form.append(token, value, el('span', 'hs-word', shown || key), cnt, button);
  const li = el('li');
  li.append(form);
  return { li, count: cnt };
}

openSocket(cfg.ws_path, {
  heartbeat: true, // any reply proves the link; see stage.js
  onMessage,
  onStatus(s) {
    linkState.textContent = T[s];
    linkState.dataset.state = s;
  },
}).start();
