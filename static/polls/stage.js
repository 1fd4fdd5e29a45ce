import { numberFormats } from './format.js';
import { openSocket } from './socket.js';

// Projected stage. Everything shown is built with createElement / createElementNS and
// textContent: no markup from the server ever reaches the page (CSP: no inline anything).

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
const lang = cfg.lang || document.documentElement.lang || 'en';
const { num, num1, mean1, signed, signed1 } = numberFormats(lang);
const calm = matchMedia('(prefers-reduced-motion: reduce)');
const NS = 'http://www.w3.org/2000/svg';
const EMPTY = { total: 0, counts: {}, summary: {} };

let question = null;
let shape = ''; // what the built view shows; only a new shape rebuilds (bars keep animating otherwise)
let view = null; // { node, paint(results, research) } for the current kind
let panel = null; // the research panel and verdict beside/below the view
let body = null;
let promptFit = null;
const results = {}; // question id -> latest snapshot

const code = $('zp-code');
code.style.setProperty('--len', code.textContent.trim().length); // CSS fits the code to the strip
const joinHost = document.querySelector('.st-go strong');
if (joinHost) joinHost.style.setProperty('--hlen', joinHost.textContent.trim().length); // and the address

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

// The largest type scale (the CSS variable --k on box, 0.3..1) at which box's content fits:
// a bisection, so the same content in the same box always gets the same picture.
function fitScale(box, overflows) {
  const set = (k) => box.style.setProperty('--k', k.toFixed(3));
  set(1);
  if (!overflows()) return;
  let lo = 0.3;
  let hi = 1;
  for (let i = 0; i < 8; i++) {
    const mid = (lo + hi) / 2;
    set(mid);
    if (overflows()) hi = mid;
    else lo = mid;
  }
  set(lo);
}

// Keeps box's type fitted to its box, also when the box resizes (reveal, window). A box whose
// size follows its own text (the prompt) is refitted when `watched`, whose size does not, resizes.
function fitter(box, watched = box) {
  const run = () => {
    if (!box.isConnected || !box.clientHeight) return;
    fitScale(box, () => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1);
  };
  const ro = new ResizeObserver(run);
  ro.observe(watched);
  return { run, dispose: () => ro.disconnect() };
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const pct = (v) => (v == null ? '–' : num1.format(v) + '%');
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// --- messages ---------------------------------------------------------------

// The host changed the theme, accent, logo or language while the page was open: it is drawn
// again with it. Only a change seen on the socket counts; a state that merely differs from
// the page (a cache not yet rebuilt after an edit outside the admin) must not reload it forever.
let lastLook = null;
function lookChanged(look) {
  if (!look) return false;
  const changed = lastLook !== null && look !== lastLook && look !== cfg.look;
  lastLook = look;
  return changed;
}

function onMessage(m) {
  if (m.type === 'state') {
    if (m.event && lookChanged(m.event.look)) {
      location.reload();
      return;
    }
    if (m.event && m.event.title) eventTitle.textContent = m.event.title;
    question = m.question;
    const q = question;
    const next = q
      ? JSON.stringify([q.id, q.kind, q.prompt, q.options, q.scale, q.split, q.quadrant, q.text])
      : '';
    if (next !== shape) {
      shape = next;
      build();
    }
    update();
  } else if (m.type === 'results') {
    const old = results[m.question];
    if (old && m.version < old.version) return;
    results[m.question] = m;
    if (question && question.id === m.question) paint();
  }
}

const KINDS = {
  single: buildOptions,
  multiple: buildOptions,
  scale: buildMean,
  ces: buildMean,
  nps: buildNps,
  enps: buildNps,
  split: buildSplit,
  text: buildCloud,
  ranking: buildRanking,
  quadrant: buildQuadrant,
};

function build() {
  root.classList.toggle('st-is-idle', !question);
  root.classList.remove('st-is-revealed');
  if (view && view.dispose) view.dispose();
  if (panel) panel.dispose();
  if (promptFit) promptFit.dispose();
  view = panel = body = promptFit = null;
  if (!question) {
    area.replaceChildren(idle);
    return;
  }
  const q = question;
  const prompt = el('h1', 'st-prompt', q.prompt);
  if (q.prompt.length > 140) prompt.classList.add('st-longer');
  else if (q.prompt.length > 70) prompt.classList.add('st-long');
  let make = KINDS[q.kind];
  if (make === buildMean && !q.scale) make = null;
  if (!make) make = q.options && q.options.length ? buildOptions : buildNothing;
  view = make(q);
  panel = buildResearch(q);
  body = el('div', 'st-body');
  body.append(view.node, panel.verdict, panel.node);
  area.replaceChildren(prompt, body);
  promptFit = fitter(prompt, area);
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
  const q = question;
  const r = (q && results[q.id]) || EMPTY;
  const total = r.total || 0;
  count.textContent = num.format(total);
  countLabel.textContent = total === 1 ? T.response : T.responses;
  if (!view) return;
  const rs = research(q, r);
  view.paint(r, rs);
  panel.paint(rs);
  body.classList.toggle('st-has-research', !!rs);
  // A long verdict runs under the research panel too, so it does not squeeze the result.
  body.classList.toggle('st-wide-verdict', !!rs && panel.verdict.classList.contains('st-verdict-wide'));
  if (root.classList.contains('st-is-revealed') !== !!rs) {
    root.classList.toggle('st-is-revealed', !!rs);
    promptFit.run(); // the prompt steps down a size beside the research
  }
}

// --- the research figures, once revealed -------------------------------------

// Pairs every comparison entry with its figure (state.question.figures, matched by id).
// Before the first snapshot with `comparison` arrives the figures alone are shown.
function research(q, r) {
  if (!q || !q.revealed) return null;
  const figs = Array.isArray(q.figures) ? q.figures : [];
  const cmps = r && r.question === q.id && Array.isArray(r.comparison) ? r.comparison : [];
  if (!figs.length && !cmps.length) return null;
  const byId = new Map(figs.map((f) => [f.id, f]));
  const entries = cmps.length
    ? cmps.map((c) => ({ c, f: byId.get(c.figure) || null }))
    : figs.map((f) => ({ c: null, f }));
  const metricOf = (e) => (e.c && e.c.metric) || (e.f && e.f.metric) || '';
  const last = entries[entries.length - 1];
  const metric = metricOf(last);
  const { c, f } = last;
  const study = (f && f.study) || {};
  const year = (c && c.year) ?? (f && f.year) ?? study.year ?? '';
  const series = entries
    .filter((e) => metricOf(e) === metric)
    .map((e) => ({ year: (e.c && e.c.year) ?? (e.f && e.f.year), value: e.c ? e.c.measured : e.f && e.f.value }))
    .filter((p) => isNum(p.value));
  return {
    metric,
    c,
    f,
    year,
    study,
    measured: c ? c.measured : f && f.value,
    room: c ? c.room : null,
    difference: c ? c.difference : null,
    source: [study.publisher, year].filter((x) => x !== '' && x != null).join(' '),
    series,
  };
}

// The research value formatted for its metric ("39 / 61", "63%", "+13", "7,5").
function formatMetric(metric, v, q, unit) {
  if (!isNum(v)) return '–';
  switch (metric) {
    case 'split':
      return q.split && q.split.b ? `${num1.format(v)} / ${num1.format(100 - v)}` : pct(v);
    case 'percentage':
    case 'shares':
      return pct(v);
    case 'nps':
      return signed.format(Math.round(v));
    case 'mean':
    case 'ces':
      return mean1.format(v);
    default:
      return num1.format(v) + (unit ? (unit === '%' ? '%' : ' ' + unit) : '');
  }
}

function measuredShares(q, rs) {
  const m = new Map();
  if (rs.c && Array.isArray(rs.c.options)) {
    for (const o of rs.c.options) if (isNum(o.measured)) m.set(String(o.id), o.measured);
  } else if (rs.f && Array.isArray(rs.f.shares)) {
    q.options.forEach((o, i) => isNum(rs.f.shares[i]) && m.set(String(o.id), rs.f.shares[i]));
  }
  return m;
}

function buildResearch(q) {
  const node = el('div', 'st-rwrap');
  const box = el('aside', 'st-research');
  const kicker = el('p', 'st-r-kicker');
  const kickWord = el('span', '', T.research);
  const kickYear = el('span', 'st-r-year');
  kicker.append(kickWord, kickYear);
  const label = el('p', 'st-r-label');
  const value = el('p', 'st-r-value');
  const sub = el('p', 'st-r-sub');
  // Room and difference: a two-cell table, label over number.
  const vs = el('dl', 'st-r-vs');
  const roomCell = el('div', 'st-r-room');
  const roomVal = el('dd', '');
  roomCell.append(el('dt', '', T.room), roomVal);
  const diffCell = el('div', 'st-r-diff');
  const diffVal = el('dd', '');
  diffCell.append(el('dt', '', T.difference), diffVal);
  vs.append(roomCell, diffCell);
  const trend = el('div', 'st-r-trend');
  box.append(kicker, label, value, sub, vs, trend);
  node.append(box);
  const fit = fitter(box);
  let fitKey = '';
  // The verdict in words, with its source cited under it, runs under the result and the panel.
  const verdict = el('figure', 'st-verdict');
  const words = el('blockquote', 'st-v-words');
  const cite = el('figcaption', 'st-v-cite');
  verdict.append(words, cite);
  let trendKey = '';

  function paint(rs) {
    node.classList.toggle('st-on', !!rs);
    verdict.classList.toggle('st-on', !!rs);
    if (!rs) return;
    const f = rs.f || {};
    const study = rs.study;
    kickYear.textContent = rs.year ? ' · ' + rs.year : '';
    label.textContent = f.label || '';
    let measured = rs.measured;
    let subText = '';
    if (rs.metric === 'shares') {
      // The option with the largest gap stands for the figure (see protocol: comparison).
      let best = null;
      const opts = rs.c && Array.isArray(rs.c.options) ? rs.c.options : [];
      for (const o of opts) {
        if (isNum(o.difference) && (!best || Math.abs(o.difference) > Math.abs(best.difference))) best = o;
      }
      if (best) {
        const opt = (q.options || []).find((o) => o.id === best.id);
        subText = opt ? opt.label : '';
        measured = best.measured;
      }
    }
    value.textContent = formatMetric(rs.metric, measured, q, f.unit);
    sub.textContent = subText;
    sub.hidden = !subText;
    const room = rs.metric === 'shares' && rs.c ? rs.c.room : rs.room;
    roomVal.textContent = isNum(room) ? formatMetric(rs.metric, room, q, f.unit) : '';
    diffVal.textContent = isNum(rs.difference)
      ? rs.metric === 'mean' || rs.metric === 'ces'
        ? signed1.format(rs.difference)
        : signed.format(Math.round(rs.difference))
      : '';
    roomCell.hidden = !roomVal.textContent;
    diffCell.hidden = !diffVal.textContent;
    vs.hidden = roomCell.hidden && diffCell.hidden;
    const title = study.title || '';
    const by = [study.publisher, study.year].filter((x) => x !== '' && x != null).join(', ');
    cite.textContent = [title, by].filter(Boolean).join(' — ');
    const said = rs.c && rs.c.words ? rs.c.words[lang] || rs.c.words.en || Object.values(rs.c.words)[0] || '' : '';
    if (words.textContent !== said) words.textContent = said;
    words.hidden = !said;
    verdict.classList.toggle('st-verdict-long', said.length > 110);

    // A trend needs several years of one measure; the room is its own point at the end.
    const showTrend = rs.series.length > 1 && rs.metric !== 'shares';
    const key = showTrend ? JSON.stringify([rs.metric, rs.series, room]) : '';
    if (key !== trendKey) {
      trendKey = key;
      trend.replaceChildren(...(showTrend ? [trendChart(rs.metric, rs.series, room, q)] : []));
    }
    trend.hidden = !showTrend;
    // Without a trend the panel needs little height: the verdict then runs under both, and the
    // result keeps the height it would otherwise lose to a verdict squeezed into its column.
    verdict.classList.toggle('st-verdict-wide', said.length > 110 || !showTrend);
    const texts = [label.textContent, value.textContent, sub.textContent, vs.hidden, showTrend, verdict.className].join('|');
    if (texts !== fitKey) {
      fitKey = texts;
      fit.run();
    }
  }
  return { node, verdict, paint, dispose: fit.dispose };
}

function trendChart(metric, series, room, q) {
  const W = 300;
  const H = 150;
  const top = 34;
  const bottom = H - 30;
  const values = series.map((p) => p.value).concat(isNum(room) ? [room] : []);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const minSpan = metric === 'mean' || metric === 'ces' ? 0.6 : 12;
  if (hi - lo < minSpan) {
    const mid = (hi + lo) / 2;
    lo = mid - minSpan / 2;
    hi = mid + minSpan / 2;
  }
  const pad = (hi - lo) * 0.12;
  lo -= pad;
  hi += pad;
  const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const slots = series.length + (isNum(room) ? 1 : 0);
  const x0 = 34;
  const x1 = W - 34;
  const step = slots > 1 ? (x1 - x0) / (slots - 1) : 0;
  const x = (i) => x0 + i * step;
  const fmt = (v) => (metric === 'split' && q.split && !q.split.b ? num1.format(v) + '%' : formatMetric(metric, v, { split: null }, ''));
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'st-trend', 'aria-hidden': 'true' });
  g.append(svg('line', { x1: 8, x2: W - 8, y1: bottom + 4, y2: bottom + 4, class: 'st-t-base' }));
  const pts = series.map((p, i) => `${x(i)},${y(p.value)}`).join(' ');
  g.append(svg('polyline', { points: pts, class: 'st-t-line' }));
  series.forEach((p, i) => {
    g.append(svg('circle', { cx: x(i), cy: y(p.value), r: 6, class: 'st-t-dot' }));
    g.append(svg('text', { x: x(i), y: y(p.value) - 13, class: 'st-t-val' }, fmt(p.value)));
    g.append(svg('text', { x: x(i), y: H - 6, class: 'st-t-year' }, String(p.year ?? '')));
  });
  if (isNum(room)) {
    const i = series.length;
    const xr = x(i);
    g.append(svg('line', { x1: (x(i - 1) + xr) / 2, x2: (x(i - 1) + xr) / 2, y1: top - 20, y2: bottom + 4, class: 'st-t-sep' }));
    g.append(svg('circle', { cx: xr, cy: y(room), r: 8, class: 'st-t-room' }));
    g.append(svg('text', { x: xr, y: y(room) - 14, class: 'st-t-val st-t-rval' }, fmt(room)));
    g.append(svg('text', { x: xr, y: H - 6, class: 'st-t-year st-t-ryear' }, T.room));
  }
  return g;
}

// --- single / multiple: bars, with the measured share beside each --------------

function buildOptions(q) {
  const node = el('div', 'st-vis st-bars');
  const legend = el('p', 'st-legend');
  const resKey = el('span', 'st-key st-key-res');
  legend.append(el('span', 'st-key st-key-room', T.room), resKey);
  legend.hidden = true;
  const list = el('ol', 'st-opts');
  list.style.setProperty('--n', q.options.length);
  list.classList.toggle('st-many', q.options.length > 4);
  const rows = new Map();
  for (const o of q.options) {
    const track = el('span', 'st-track');
    const fill = el('span', 'st-fill');
    track.append(fill);
    const rtrack = el('span', 'st-rtrack');
    const rfill = el('span', 'st-fill st-rfill');
    rtrack.append(rfill);
    const row = {
      fill,
      rfill,
      pct: el('b', 'st-pct', '0%'),
      cnt: el('span', 'st-cnt', '0'),
      rpct: el('span', 'st-rpct'),
    };
    const li = el('li', 'st-opt');
    li.append(el('span', 'st-label', o.label), track, row.pct, row.cnt, rtrack, row.rpct);
    list.append(li);
    rows.set(String(o.id), row);
  }
  node.append(legend, list);
  const fit = fitter(list);
  let was = false;

  function paint(r, rs) {
    const p = (r.summary && r.summary.percent) || {};
    const counts = r.counts || {};
    const total = r.total || 0;
    const share = (k) => p[k] ?? (total ? Math.round((100 * (counts[k] || 0)) / total) : 0);
    const m = rs && rs.metric === 'shares' ? measuredShares(q, rs) : null;
    const on = !!(m && m.size);
    list.classList.toggle('st-cmp', on);
    legend.hidden = !on;
    if (on !== was) {
      was = on;
      fit.run();
    }
    // Short, so the key stays on one line: the study is cited under the verdict.
    if (on) resKey.textContent = [T.research, rs.year].filter((x) => x !== '' && x != null).join(' ');
    for (const [k, row] of rows) {
      row.fill.style.setProperty('--p', share(k) / 100);
      row.pct.textContent = share(k) + '%';
      row.cnt.textContent = num.format(counts[k] || 0);
      if (on) {
        const v = m.get(k);
        row.rfill.style.setProperty('--p', isNum(v) ? clamp(v / 100, 0, 1) : 0);
        row.rpct.textContent = pct(v);
      }
    }
  }
  return { node, paint, dispose: fit.dispose };
}

// --- scale (report mark) and CES: big mean plus the distribution ----------------

function buildMean(q) {
  const { min, max } = q.scale;
  const node = el('div', 'st-vis st-scale');
  const cols = el('div', 'st-cols');
  const n = max - min + 1;
  const fills = new Map();
  const pcts = new Map();
  for (let v = min; v <= max; v++) {
    const key = String(v);
    const p = el('span', 'st-cpct', '0%');
    const bar = el('span', 'st-bar');
    const fill = el('span', 'st-fill');
    bar.append(fill);
    const col = el('div', 'st-col');
    col.append(p, bar, el('span', 'st-val', key));
    cols.append(col);
    fills.set(key, fill);
    pcts.set(key, p);
  }
  const plot = el('div', 'st-plot');
  plot.style.setProperty('--n', n);
  plot.classList.toggle('st-dense', n > 11);
  const axis = el('div', 'st-axis');
  const mark = el('div', 'st-mark');
  const markLabel = el('span', 'st-mark-label');
  const markVal = el('b', '');
  const markSrc = el('span', '');
  markLabel.append(markVal, markSrc);
  mark.append(markLabel);
  axis.append(mark);
  plot.append(cols, axis);
  const ends = el('div', 'st-ends');
  ends.append(el('span', '', q.scale.min_label || ''), el('span', '', q.scale.max_label || ''));
  const chart = el('div', 'st-chart');
  chart.append(plot, ends);

  // The room's mean; once revealed the measured mean stands right beside it (the research panel).
  const meanVal = el('b', 'st-mean-val', '–');
  const side = el('div', 'st-mean');
  side.append(meanVal, el('span', 'st-mean-label', T.average));
  if (q.kind === 'ces') {
    side.append(el('p', 'st-mean-note', q.scale.lower_is_better ? T.lowerBetter : T.higherBetter));
  }
  node.append(chart, side);

  function paint(r, rs) {
    const p = (r.summary && r.summary.percent) || {};
    const counts = r.counts || {};
    const total = r.total || 0;
    const share = (k) => p[k] ?? (total ? Math.round((100 * (counts[k] || 0)) / total) : 0);
    // Columns are scaled to the tallest so the shape of the distribution fills the chart.
    const top = Math.max(1, ...[...fills.keys()].map(share));
    for (const [k, fill] of fills) fill.style.setProperty('--p', share(k) / top);
    for (const [k, s] of pcts) s.textContent = share(k) + '%';
    const m = r.summary && r.summary.mean;
    meanVal.textContent = isNum(m) ? mean1.format(m) : '–';
    const on = !!rs && (rs.metric === 'mean' || rs.metric === 'ces') && isNum(rs.measured);
    node.classList.toggle('st-cmp', on);
    if (!on) return;
    let v = rs.measured;
    const fs = rs.f && rs.f.scale;
    // A figure measured on another scale is placed proportionally on this one.
    if (fs && isNum(fs.min) && isNum(fs.max) && fs.max > fs.min && (fs.min !== min || fs.max !== max)) {
      v = min + ((v - fs.min) / (fs.max - fs.min)) * (max - min);
    }
    const x = clamp((v - min) / (max - min), 0, 1);
    mark.style.setProperty('--x', x);
    markVal.textContent = mean1.format(rs.measured);
    markSrc.textContent = rs.year ? String(rs.year) : ''; // the panel beside names the source
  }
  return { node, paint };
}

// --- NPS / eNPS: gauge -100..+100 and the three groups ---------------------------

const GX = 100;
const GY = 100;
const GR = 80;
function gaugePoint(score, radius) {
  const a = Math.PI * (1 - (clamp(score, -100, 100) + 100) / 200);
  return [GX + radius * Math.cos(a), GY - radius * Math.sin(a)];
}

function buildNps(q) {
  const node = el('div', 'st-vis st-nps');
  const g = svg('svg', { viewBox: '-34 -26 268 158', class: 'st-gauge', role: 'img' });
  const arc = `M${GX - GR} ${GY} A${GR} ${GR} 0 0 1 ${GX + GR} ${GY}`;
  g.append(svg('path', { d: arc, class: 'st-g-track', pathLength: 200 }));
  const val = svg('path', { d: arc, class: 'st-g-val', pathLength: 200 });
  g.append(val);
  g.append(svg('line', { x1: GX, x2: GX, y1: GY - GR - 14, y2: GY - GR + 14, class: 'st-g-zero' }));
  g.append(svg('text', { x: GX - GR, y: GY + 26, class: 'st-g-tick' }, signed.format(-100)));
  g.append(svg('text', { x: GX + GR, y: GY + 26, class: 'st-g-tick' }, signed.format(100)));
  const score = svg('text', { x: GX, y: GY - 8, class: 'st-g-score' }, '–');
  g.append(score);
  g.append(svg('text', { x: GX, y: GY + 18, class: 'st-g-name' }, q.kind === 'enps' ? T.enps : T.nps));
  const mark = svg('g', { class: 'st-g-mark' });
  const markLine = svg('line', {});
  const markText = svg('text', { class: 'st-g-mtext' });
  mark.append(markLine, markText);
  g.append(mark);

  const bar = el('div', 'st-npsbar');
  const legend = el('div', 'st-npskey');
  const groups = ['detractors', 'passives', 'promoters'].map((name) => {
    const seg = el('span', `st-seg st-seg-${name}`);
    bar.append(seg);
    const key = el('p', `st-npsk st-npsk-${name}`);
    const keyPct = el('b', '', '0%');
    key.append(el('span', '', T[name] || name), keyPct);
    legend.append(key);
    return { name, seg, keyPct };
  });
  node.append(g, bar, legend);

  function paint(r, rs) {
    const s = r.summary || {};
    const sc = isNum(s.score) ? s.score : null;
    score.textContent = sc == null ? '–' : signed.format(sc);
    g.setAttribute('aria-label', `${q.kind === 'enps' ? T.enps : T.nps} ${score.textContent}`);
    const v = sc == null ? 0 : clamp(sc, -100, 100);
    val.style.strokeDasharray = `${Math.abs(v)} 400`;
    val.style.strokeDashoffset = String(-(100 + Math.min(0, v)));
    val.classList.toggle('st-g-neg', v < 0);
    for (const grp of groups) {
      const share = isNum(s[grp.name]) ? s[grp.name] : 0;
      grp.seg.style.flexGrow = String(share);
      grp.keyPct.textContent = share + '%';
    }
    bar.classList.toggle('st-empty', !r.total);
    const on = !!rs && rs.metric === 'nps' && isNum(rs.measured);
    mark.classList.toggle('st-on', on);
    if (!on) return;
    const m = clamp(rs.measured, -100, 100);
    const [ax, ay] = gaugePoint(m, GR - 20);
    const [bx, by] = gaugePoint(m, GR + 18);
    const [tx, ty] = gaugePoint(m, GR + 26);
    markLine.setAttribute('x1', ax);
    markLine.setAttribute('y1', ay);
    markLine.setAttribute('x2', bx);
    markLine.setAttribute('y2', by);
    markText.setAttribute('x', tx);
    markText.setAttribute('y', ty + 4);
    markText.setAttribute('text-anchor', m < -12 ? 'end' : m > 12 ? 'start' : 'middle');
    markText.textContent = signed.format(Math.round(rs.measured)); // the source is named in the panel beside
  }
  return { node, paint };
}

// --- split: the room's mean A | B, the spread in 10-point bins --------------------

function buildSplit(q) {
  const sp = q.split || { a: '', b: '' };
  const plain = !sp.b;
  const node = el('div', 'st-vis st-split');
  node.classList.toggle('st-plain', plain);
  const head = el('div', 'st-sp-head');
  const aBox = el('div', 'st-sp-a');
  const aPct = el('b', 'st-sp-pct', '–');
  aBox.append(el('span', 'st-sp-name', sp.a || T.average), aPct);
  head.append(aBox);
  const bPct = el('b', 'st-sp-pct', '–');
  if (!plain) {
    const bBox = el('div', 'st-sp-b');
    bBox.append(el('span', 'st-sp-name', sp.b), bPct);
    head.append(bBox);
  }
  const barWrap = el('div', 'st-sp-barwrap');
  const bar = el('div', 'st-sp-bar');
  const fill = el('span', 'st-sp-fill');
  bar.append(fill);
  const mark = el('div', 'st-sp-mark');
  const chip = el('span', 'st-sp-chip');
  const chipVal = el('b', '');
  const chipSrc = el('span', '');
  chip.append(chipVal, chipSrc);
  mark.append(chip);
  barWrap.append(bar, mark);
  const bins = el('div', 'st-sp-bins');
  const binFills = [];
  const binCounts = [];
  for (let i = 0; i < 10; i++) {
    const col = el('div', 'st-sp-bin');
    const c = el('span', 'st-sp-bcount', '');
    const b = el('span', 'st-sp-bbar');
    const f = el('span', 'st-fill');
    b.append(f);
    col.append(c, b);
    bins.append(col);
    binFills.push(f);
    binCounts.push(c);
  }
  const ticks = el('div', 'st-sp-ticks');
  for (let t = 0; t <= 100; t += 10) {
    const s = el('span', '', num.format(t));
    s.style.setProperty('--x', t / 100);
    ticks.append(s);
  }
  node.append(head, barWrap, bins, ticks);

  function paint(r, rs) {
    const s = r.summary || {};
    const a = isNum(s.mean_a) ? s.mean_a : null;
    const b = isNum(s.mean_b) ? s.mean_b : a == null ? null : 100 - a;
    aPct.textContent = pct(a);
    bPct.textContent = pct(b);
    fill.style.setProperty('--p', a == null ? 0 : clamp(a / 100, 0, 1));
    bar.classList.toggle('st-empty', a == null);
    const counts = (s.bins && typeof s.bins === 'object' && s.bins) || {};
    const vals = binFills.map((_, i) => Number(counts[String(i * 10)]) || 0);
    const top = Math.max(1, ...vals);
    vals.forEach((v, i) => {
      binFills[i].style.setProperty('--p', v / top);
      binCounts[i].textContent = v ? num.format(v) : '';
    });
    const on = !!rs && (rs.metric === 'split' || rs.metric === 'percentage') && isNum(rs.measured);
    node.classList.toggle('st-cmp', on);
    if (!on) return;
    const x = clamp(rs.measured / 100, 0, 1);
    mark.style.setProperty('--x', x);
    chipVal.textContent = formatMetric(rs.metric === 'split' ? 'split' : 'percentage', rs.measured, q, '');
    chipSrc.textContent = rs.year ? String(rs.year) : ''; // the panel beside names the source
  }
  return { node, paint };
}

// --- text: a word cloud laid out by flex-wrap, biggest in the middle ---------------

// summary.words, with words that read the same (two masked words, "f***") counted together.
function wordCounts(r) {
  const sums = new Map();
  for (const w of r.summary && Array.isArray(r.summary.words) ? r.summary.words : []) {
    if (w && typeof w.word === 'string' && w.word && isNum(w.count)) sums.set(w.word, (sums.get(w.word) || 0) + w.count);
  }
  return [...sums].map(([word, n]) => ({ word, count: n })).slice(0, 60);
}

const CLOUD_COLOURS = 6;
function hue(word) {
  let h = 0;
  for (let i = 0; i < word.length; i++) h = (h * 31 + word.charCodeAt(i)) >>> 0;
  return h % CLOUD_COLOURS;
}

function buildCloud() {
  const node = el('div', 'st-vis st-cloudbox');
  const cloud = el('div', 'st-cloud');
  const waiting = el('p', 'st-cloud-wait', T.noWords);
  node.append(cloud, waiting);
  const words = new Map(); // word -> element
  let order = [];

  function fit() {
    // Every word shrinks together until the cloud fits its box.
    if (!cloud.isConnected || !cloud.clientHeight) return;
    fitScale(cloud, () => cloud.scrollHeight > cloud.clientHeight + 1 || cloud.scrollWidth > cloud.clientWidth + 1);
  }
  const ro = new ResizeObserver(() => fit());
  ro.observe(cloud);

  function paint(r) {
    const list = wordCounts(r);
    waiting.hidden = list.length > 0;
    list.sort((a, b) => b.count - a.count || a.word.localeCompare(b.word));
    const hi = list.length ? Math.sqrt(list[0].count) : 1;
    const lo = list.length ? Math.sqrt(list[list.length - 1].count) : 1;
    const seen = new Set();
    const arranged = [];
    list.forEach((w, i) => {
      seen.add(w.word);
      let e = words.get(w.word);
      if (!e) {
        e = el('span', `st-word st-c${hue(w.word)}`, w.word);
        e.style.setProperty('--len', Math.max(3, w.word.length));
        if (!calm.matches) {
          e.classList.add('st-new');
          e.addEventListener('animationend', () => e.classList.remove('st-new'), { once: true });
        }
        words.set(w.word, e);
      }
      const t = hi === lo ? 0.55 : (Math.sqrt(w.count) - lo) / (hi - lo);
      e.style.setProperty('--s', (2 + 5 * t).toFixed(2));
      e.classList.toggle('st-top', i < 3);
      // Centre-out: the most frequent word in the middle, the rest alternating either side.
      if (i % 2) arranged.unshift(e);
      else arranged.push(e);
    });
    for (const [w, e] of words) {
      if (!seen.has(w)) {
        e.remove();
        words.delete(w);
      }
    }
    if (arranged.length !== order.length || arranged.some((e, i) => e !== order[i])) {
      cloud.replaceChildren(...arranged);
      order = arranged;
    }
    fit();
  }
  return { node, paint, dispose: () => ro.disconnect() };
}

// --- ranking: ordered by points, bars proportional to points ----------------------

function buildRanking(q) {
  const node = el('div', 'st-vis st-rankbox');
  const list = el('ol', 'st-rank');
  list.style.setProperty('--n', Math.max(1, q.options.length));
  const rows = new Map();
  for (const o of q.options) {
    const li = el('li', 'st-rk');
    const place = el('b', 'st-rk-pos', '');
    const track = el('span', 'st-track');
    const fill = el('span', 'st-fill');
    track.append(fill);
    const pts = el('b', 'st-rk-pts', '0');
    const mr = el('span', 'st-rk-mr', '');
    li.append(place, el('span', 'st-label', o.label), track, pts, mr);
    list.append(li);
    rows.set(String(o.id), { li, place, fill, pts, mr });
  }
  node.append(list);
  const fit = fitter(list);
  let order = q.options.map((o) => String(o.id));

  function paint(r) {
    const items = (r.summary && Array.isArray(r.summary.items) ? r.summary.items : []).filter((i) => rows.has(String(i.id)));
    const byId = new Map(items.map((i) => [String(i.id), i]));
    const next = items.map((i) => String(i.id));
    for (const id of order) if (!byId.has(id)) next.push(id);
    const top = Math.max(1, ...items.map((i) => (isNum(i.points) ? i.points : 0)));
    list.classList.toggle('st-empty', !items.length); // no leader before the first answer
    next.forEach((id, n) => {
      const row = rows.get(id);
      const it = byId.get(id);
      const points = it && isNum(it.points) ? it.points : 0;
      row.place.textContent = String(n + 1);
      row.fill.style.setProperty('--p', points / top);
      row.pts.textContent = `${num.format(points)} ${T.points}`;
      row.mr.textContent = it && isNum(it.mean_rank) ? `${T.meanRank} ${mean1.format(it.mean_rank)}` : '';
    });
    if (next.join() === order.join()) return;
    // FLIP: rows glide to their new places instead of jumping.
    const before = new Map(next.map((id) => [id, rows.get(id).li.getBoundingClientRect().top]));
    list.replaceChildren(...next.map((id) => rows.get(id).li));
    order = next;
    if (calm.matches) return;
    for (const id of next) {
      const li = rows.get(id).li;
      const dy = before.get(id) - li.getBoundingClientRect().top;
      if (!dy) continue;
      // Rows climbing pass in front; rows dropping fade back so the two never read as one.
      const frames = dy > 0 ? [{ transform: `translateY(${dy}px)`, zIndex: 1 }, { transform: 'none', zIndex: 1 }] : [{ transform: `translateY(${dy}px)`, opacity: 0.25 }, { transform: 'none', opacity: 1 }];
      li.animate(frames, { duration: 600, easing: 'ease' });
    }
  }
  return { node, paint, dispose: fit.dispose };
}

// --- quadrant: 2x2 scatter of each item's mean point --------------------------------

const ARROWS = { tl: '↖', tr: '↗', bl: '↙', br: '↘' };
const DOT_COLOURS = 8;

function buildQuadrant(q) {
  const qd = q.quadrant || {};
  const node = el('div', 'st-vis st-quad');
  const wrap = el('div', 'st-qwrap');
  const ylab = el('div', 'st-qy');
  ylab.append(el('span', 'st-q-end', qd.y_high || ''), el('b', 'st-q-axis', qd.y || ''), el('span', 'st-q-end', qd.y_low || ''));
  const plot = el('div', 'st-qplot');
  const g = svg('svg', { viewBox: '0 0 100 100', class: 'st-qsvg', 'aria-hidden': 'true' });
  for (const [x, y, c] of [[0, 0, 'tl'], [50, 0, 'tr'], [0, 50, 'bl'], [50, 50, 'br']]) {
    g.append(svg('rect', { x, y, width: 50, height: 50, class: `st-q-cell st-q-${c}` }));
  }
  g.append(svg('line', { x1: 50, x2: 50, y1: 0, y2: 100, class: 'st-q-mid' }));
  g.append(svg('line', { x1: 0, x2: 100, y1: 50, y2: 50, class: 'st-q-mid' }));
  g.append(svg('rect', { x: 0, y: 0, width: 100, height: 100, class: 'st-q-frame' }));
  const dotsLayer = svg('g', {});
  g.append(dotsLayer);
  plot.append(g);
  const xlab = el('div', 'st-qx');
  xlab.append(el('span', 'st-q-end', qd.x_low || ''), el('b', 'st-q-axis', qd.x || ''), el('span', 'st-q-end', qd.x_high || ''));
  wrap.append(ylab, plot, el('span', ''), xlab);
  const legend = el('ol', 'st-qlegend');
  legend.style.setProperty('--n', Math.max(1, q.options.length));
  const items = new Map();
  q.options.forEach((o, i) => {
    const c = `st-d${i % DOT_COLOURS}`;
    const dot = svg('g', { class: `st-q-dot ${c}` });
    dot.append(svg('circle', { r: 5.2 }), svg('text', { class: 'st-q-num' }, String(i + 1)));
    dotsLayer.append(dot);
    const li = el('li', 'st-qi');
    const stat = el('span', 'st-qi-stat');
    li.append(el('b', `st-qi-num ${c}`, String(i + 1)), el('span', 'st-qi-label', o.label), stat);
    legend.append(li);
    items.set(String(o.id), { dot, stat });
  });
  node.append(wrap, legend);
  const fit = fitter(legend);

  function paint(r) {
    const list = r.summary && Array.isArray(r.summary.items) ? r.summary.items : [];
    const byId = new Map(list.map((i) => [String(i.id), i]));
    for (const [id, { dot, stat }] of items) {
      const it = byId.get(id);
      const ok = it && isNum(it.x) && isNum(it.y);
      dot.classList.toggle('st-on', !!ok);
      if (ok) dot.style.transform = `translate(${clamp(it.x, 0, 100)}px, ${100 - clamp(it.y, 0, 100)}px)`;
      const qs = (it && it.quadrants) || {};
      let best = null;
      let sum = 0;
      for (const c of ['tl', 'tr', 'bl', 'br']) {
        const v = Number(qs[c]) || 0;
        sum += v;
        if (v > 0 && (!best || v > qs[best])) best = c;
      }
      stat.textContent = best ? `${ARROWS[best]} ${num.format(qs[best])} / ${num.format(sum)}` : '';
    }
  }
  return { node, paint, dispose: fit.dispose };
}

function buildNothing() {
  return { node: el('div', 'st-vis'), paint() {} };
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
  fallback: cfg.fallback,
  onMessage,
  onStatus(s) {
    conn.hidden = s !== 'reconnecting';
  },
}).start();
