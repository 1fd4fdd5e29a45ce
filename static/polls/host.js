import { $, el, isNum } from './dom.js';
import { formatter } from './format.js';
import { loadKinds } from './kinds.js';
import { options } from './remote-kit.js';
import { remoteQa } from './remote-qa.js';
import { remoteQuiz } from './remote-quiz.js';
import { openSocket } from './socket.js';

// The host's remote control: the buttons are the server's page; this keeps the live count,
// the current kind's mini view (static/polls/kinds/<kind>/remote.js), the research once
// revealed and the word list's Hide buttons up to date.

const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const renderedKey = $('zp-host').dataset.key;
const box = $('zp-results'); // absent when no question is current
const wordList = $('zp-words'); // only for a word-cloud question
const count = $('zp-count');
const countLabel = $('zp-count-label');
const linkState = $('zp-link');
const lang = cfg.lang || document.documentElement.lang || 'en';
const csrfInput = document.querySelector('input[name="csrfmiddlewaretoken"]');

// Everything the remote knows, in one place.
const page = {
  T,
  lang,
  fmt: formatter(lang),
  kinds: {},
  question: null,
  view: null,
  leaving: false,
  results: {},
  wordRows: new Map(), // word as counted (summary key) -> { li, count }
};
const { fmt } = page;

// One press per page: a second tap while the first POST travels would act twice.
// (Every form on the page: the controls and each word's Hide / Show again. The Q&A's forms
// are remote-qa.js's: they post without leaving the page.)
const qa = remoteQa($('hs-qa'), () => page.leaving);
document.addEventListener('submit', (e) => {
  if (qa.owns(e)) return;
  if (page.leaving) e.preventDefault();
  page.leaving = true;
});

// The buttons were rendered for one question and state; when the live state differs
// (changed from admin or another device), fetch a fresh page. Guarded against reload loops.
function reloadSoon() {
  if (page.leaving) return;
  page.leaving = true;
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

const quiz = remoteQuiz(page, (m) => sock.send(m));
let sock = null;

function onMessage(m) {
  if (quiz.take(m)) return;
  if (m.type === 'state') {
    const q = m.question;
    const key = (q ? `${q.id}|${q.open ? 1 : 0}|${q.show_results ? 1 : 0}|${q.revealed ? 1 : 0}` : '|||') + `|${m.event && m.event.podium ? 1 : 0}`;
    if (key !== renderedKey) return reloadSoon();
    if (!page.view && q && box) build(q);
    page.question = q;
    paint();
    quiz.paint();
  } else if (m.type === 'results') {
    const old = page.results[m.question];
    if (old && m.version < old.version) return;
    page.results[m.question] = m;
    if (page.question && m.question === page.question.id) paint();
  } else if (m.type === 'qa_board') {
    qa.board(m);
  }
}

// --- the live mini view: the kind's headline figure, then a compact picture ----------

function build(q) {
  const view = (page.view = { fills: new Map(), pcts: new Map() });
  view.headNode = el('p', 'hs-head');
  view.head = el('b', 'hs-head-val', '–');
  view.headLabel = el('span', 'hs-head-label');
  view.headNode.append(view.head, view.headLabel);
  view.research = el('div', 'hs-research');
  view.research.hidden = true;
  const kind = page.kinds[q.kind];
  let nodes = kind && kind.build(q, view, page);
  if (!nodes) {
    view.kind = options;
    nodes = options.build(q, view, page);
  } else view.kind = kind;
  box.append(...nodes, view.research);
}

function paint() {
  const q = page.question;
  const r = q && page.results[q.id];
  if (!r || !count) return;
  count.textContent = fmt.count(r.total);
  countLabel.textContent = r.total === 1 ? T.response : T.responses;
  if (wordList) paintWords(r);
  const { view } = page;
  if (!view) return;
  const s = r.summary || {};
  const p = s.percent || {};
  const counts = r.counts || {};
  const share = (key) => p[key] ?? (r.total ? Math.round((100 * (counts[key] || 0)) / r.total) : 0);
  const top = view.scale ? Math.max(1, ...[...view.fills.keys()].map(share)) : 100;
  for (const [key, fill] of view.fills) fill.style.setProperty('--p', share(key) / top);
  for (const [key, b] of view.pcts) b.textContent = `${share(key)}% · ${fmt.count(counts[key] || 0)}`;
  if (view.kind.paint) view.kind.paint(q, s, view, page);
  paintResearch(q, r);
}

// Once revealed: the measured figure, the difference and the words the stage shows.
function paintResearch(q, r) {
  const { view } = page;
  const cmps = Array.isArray(r.comparison) ? r.comparison : [];
  const c = q.revealed ? cmps[cmps.length - 1] : null;
  view.research.hidden = !c;
  if (!c) return;
  const f = (q.figures || []).find((x) => x.id === c.figure) || {};
  const show = (v) => (isNum(v) ? fmt.metric(c.metric, v, q) : '–');
  const diff = isNum(c.difference) ? fmt.difference(c.metric, c.difference) : '–';
  const source = [f.study && f.study.publisher, c.year ?? f.year].filter((x) => x != null && x !== '').join(' ');
  const line = el('p', 'hs-r-line');
  line.append(
    el('span', 'hs-r-kicker', `${T.research}${source ? ' · ' + source : ''}`),
    el('b', 'hs-r-val', show(c.measured)),
    el('span', '', `${T.room} ${show(c.room)} · ${T.difference} ${diff}`),
  );
  const said = c.words ? c.words[lang] || c.words.en || '' : '';
  view.research.replaceChildren(line, ...(said ? [el('p', 'hs-r-words', said)] : []));
}

// --- word cloud moderation: a Hide button per word ---------------------------------
// Rows keep their place (new words are added at the end) so a button never moves under a
// finger that is about to tap it; the page reloads after every hide anyway.

function paintWords(r) {
  const { wordRows } = page;
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
    row.count.textContent = fmt.count(Number(w.count) || 0);
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

page.kinds = await loadKinds(cfg.kinds);
sock = openSocket(cfg.ws_path, {
  heartbeat: true, // any reply proves the link; see stage.js
  onMessage,
  onOpen: quiz.open,
  onStatus(s) {
    linkState.textContent = T[s];
    linkState.dataset.state = s;
  },
});
sock.start();
