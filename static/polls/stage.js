import { $, el, isNum, svg } from './dom.js';
import { formatter } from './format.js';
import { loadKinds } from './kinds.js';
import { buildNothing, buildOptions, fitter } from './stage-kit.js';
import { layoutKey, segmentBars, segmentLayer } from './stage-segments.js';
import { openSocket } from './socket.js';
import { stageQa } from './stage-qa.js';
import { stageQuiz } from './stage-quiz.js';

// Projected stage: the current question through its kind's renderer
// (static/polls/kinds/<kind>/stage.js), the research panel and verdict once revealed; while the
// host shows results by segment, through the kind's per-segment view (stage-segments.js); while
// the host shows the audience's Q&A, that in its place (stage-qa.js); in a quiz, the countdown,
// the right answer and the leaderboard, and the podium (stage-quiz.js).

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
const EMPTY = { total: 0, counts: {}, summary: {} };

// Everything the screen knows, in one place.
const page = {
  T,
  // A translated template with {name} placeholders.
  t: (key, vals) => T[key].replace(/\{(\w+)\}/g, (m, k) => (k in vals ? vals[k] : m)),
  lang,
  fmt: formatter(lang),
  kinds: {},
  question: null,
  shape: '', // what the built view shows; only a new shape rebuilds (bars keep animating otherwise)
  split: '', // the segments the view is split into ('' for none): a change rebuilds too
  view: null, // { node, paint(results, research), dispose } for the current kind
  panel: null, // the research panel and verdict beside/below the view
  body: null,
  promptFit: null,
  results: {}, // question id -> latest snapshot
  lastLook: null,
  stillTimer: 0,
  podium: false, // the host shows the quiz's podium (state.event.podium)
};
const { fmt } = page;
const qa = stageQa(page, root);
const quiz = stageQuiz(page, root, (m) => sock.send(m));
let sock = null;

const code = $('zp-code');
code.style.setProperty('--len', code.textContent.trim().length); // CSS fits the code to the strip
const joinHost = document.querySelector('.st-go strong');
if (joinHost) joinHost.style.setProperty('--hlen', joinHost.textContent.trim().length); // and the address

// --- messages ---------------------------------------------------------------

// The host changed the theme, accent, logo or language while the page was open: it is drawn
// again with it. Only a change seen on the socket counts; a state that merely differs from
// the page (a cache not yet rebuilt after an edit outside the admin) must not reload it forever.
function lookChanged(look) {
  if (!look) return false;
  const changed = page.lastLook !== null && look !== page.lastLook && look !== cfg.look;
  page.lastLook = look;
  return changed;
}

function onMessage(m) {
  if (quiz.take(m)) return;
  if (m.type === 'state') {
    if (m.event && lookChanged(m.event.look)) {
      location.reload();
      return;
    }
    if (m.event && m.event.title) eventTitle.textContent = m.event.title;
    page.podium = !!(m.event && m.event.podium);
    const q = (page.question = m.question);
    const next = q ? shapeOf(q) : '';
    if (next !== page.shape) {
      page.shape = next;
      build();
    }
    update();
  } else if (m.type === 'results') {
    const old = page.results[m.question];
    if (old && m.version < old.version) return;
    page.results[m.question] = m;
    if (!page.question || page.question.id !== m.question) return;
    if (layoutKey(m) !== page.split) build();
    paint();
  } else if (m.type === 'qa_board') {
    qa.board(m);
  }
}

// What the built view draws: the question without its progress (open, shown, revealed, its
// place in the show) and its research, which are painted into the view as they change.
function shapeOf(q) {
  const { open, state, show_results, revealed, figures, figures_count, position, count, ...shape } = q;
  return JSON.stringify(shape);
}

function build() {
  const q = page.question;
  root.classList.toggle('st-is-idle', !q);
  root.classList.remove('st-is-revealed');
  root.classList.remove('st-is-split');
  if (page.view && page.view.dispose) page.view.dispose();
  if (page.panel) page.panel.dispose();
  if (page.promptFit) page.promptFit.dispose();
  page.view = page.panel = page.body = page.promptFit = null;
  if (!q) {
    area.replaceChildren(idle);
    return;
  }
  const prompt = el('h1', 'st-prompt', q.prompt);
  if (q.prompt.length > 140) prompt.classList.add('st-longer');
  else if (q.prompt.length > 70) prompt.classList.add('st-long');
  const kind = page.kinds[q.kind];
  const r = page.results[q.id];
  page.split = layoutKey(r);
  // A kind without a renderer here (or without what it needs) shows its options, if any.
  const hasOptions = q.options && q.options.length;
  const bySegment = page.split && ((kind && kind.segments) || (hasOptions ? segmentBars : null));
  const split = bySegment && bySegment(q, page, r);
  // The groups want the width: the join strip steps back as it does beside the research.
  root.classList.toggle('st-is-split', !!split);
  const view = (split && segmentLayer(split, r, page)) || (kind && kind.build(q, page)) || (hasOptions ? buildOptions(q, page) : buildNothing());
  const panel = buildResearch(q);
  const body = el('div', 'st-body');
  body.append(view.node, panel.verdict, panel.node);
  area.replaceChildren(prompt, body);
  Object.assign(page, { view, panel, body, promptFit: fitter(prompt, area) });
  quiz.paint();
}

function update() {
  const q = page.question;
  counter.hidden = !q;
  badge.hidden = !q;
  pos.textContent = q && q.count ? q.position + ' / ' + q.count : '';
  if (q) {
    const state = q.open ? 'open' : q.state === 'draft' ? 'soon' : 'closed';
    badge.textContent = T[state];
    badge.dataset.state = state;
  }
  paint();
  quiz.paint();
}

function paint() {
  const { question: q, view, panel, body } = page;
  const r = (q && page.results[q.id]) || EMPTY;
  const total = r.total || 0;
  count.textContent = fmt.count(total);
  countLabel.textContent = total === 1 ? T.response : T.responses;
  if (!view) return;
  const rs = research(q, r);
  view.paint(r, rs);
  // By segment, the whole room's research is the first group's, beside the others': the panel
  // would only narrow them. Its verdict and source stay under the groups.
  panel.paint(rs);
  panel.node.hidden = !!page.split;
  body.classList.toggle('st-has-research', !!rs && !page.split);
  // A long verdict runs under the research panel too, so it does not squeeze the result.
  body.classList.toggle('st-wide-verdict', !!rs && panel.verdict.classList.contains('st-verdict-wide'));
  if (root.classList.contains('st-is-revealed') !== !!rs) {
    root.classList.toggle('st-is-revealed', !!rs);
    page.promptFit.run(); // the prompt steps down a size beside the research
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
const formatMetric = (metric, v, q) => (isNum(v) ? fmt.metric(metric, v, q) : '–');

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
    value.textContent = formatMetric(rs.metric, measured, q);
    sub.textContent = subText;
    sub.hidden = !subText;
    const room = rs.metric === 'shares' && rs.c ? rs.c.room : rs.room;
    roomVal.textContent = isNum(room) ? formatMetric(rs.metric, room, q) : '';
    diffVal.textContent = isNum(rs.difference) ? fmt.difference(rs.metric, rs.difference) : '';
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
      trend.replaceChildren(...(showTrend ? [trendChart(rs.metric, rs.series, room)] : []));
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

function trendChart(metric, series, room) {
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
  const show = (v) => formatMetric(metric, v, {}); // a trend's points are A's part alone
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'st-trend', 'aria-hidden': 'true' });
  g.append(svg('line', { x1: 8, x2: W - 8, y1: bottom + 4, y2: bottom + 4, class: 'st-t-base' }));
  const pts = series.map((p, i) => `${x(i)},${y(p.value)}`).join(' ');
  g.append(svg('polyline', { points: pts, class: 'st-t-line' }));
  series.forEach((p, i) => {
    g.append(svg('circle', { cx: x(i), cy: y(p.value), r: 6, class: 'st-t-dot' }));
    g.append(svg('text', { x: x(i), y: y(p.value) - 13, class: 'st-t-val' }, show(p.value)));
    g.append(svg('text', { x: x(i), y: H - 6, class: 'st-t-year' }, String(p.year ?? '')));
  });
  if (isNum(room)) {
    const i = series.length;
    const xr = x(i);
    g.append(svg('line', { x1: (x(i - 1) + xr) / 2, x2: (x(i - 1) + xr) / 2, y1: top - 20, y2: bottom + 4, class: 'st-t-sep' }));
    g.append(svg('circle', { cx: xr, cy: y(room), r: 8, class: 'st-t-room' }));
    g.append(svg('text', { x: xr, y: y(room) - 14, class: 'st-t-val st-t-rval' }, show(room)));
    g.append(svg('text', { x: xr, y: H - 6, class: 'st-t-year st-t-ryear' }, T.room));
  }
  return g;
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
function stir() {
  document.body.classList.remove('st-still');
  clearTimeout(page.stillTimer);
  page.stillTimer = setTimeout(() => document.body.classList.add('st-still'), 3000);
}
addEventListener('pointermove', stir);
addEventListener('keydown', stir);
stir();

// The server answers anything a screen sends (with not_allowed); that reply is all the
// heartbeat needs to notice a dead link before the next question is missed.
page.kinds = await loadKinds(cfg.kinds);
sock = openSocket(cfg.ws_path, {
  heartbeat: true,
  fallback: cfg.fallback,
  onMessage,
  onOpen: quiz.open,
  onStatus(s) {
    conn.hidden = s !== 'reconnecting';
  },
});
sock.start();
