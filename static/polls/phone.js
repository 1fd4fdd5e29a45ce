import { $, button, el } from './dom.js';
import { formatter } from './format.js';
import { loadKinds } from './kinds.js';
import { buildOptions, group, options } from './phone-kit.js';
import { openSocket } from './socket.js';
import { solve } from './work.js';

// The attendee's phone: joins, shows the current question through its kind's renderer
// (static/polls/kinds/<kind>/phone.js), sends answers and keeps the unsent ones; the audience
// Q&A beside the poll (startQa) lives here too: every phone loads it, and one file is
// smaller gzipped than two (the page's budget, tests/test_views.py).

const cfg = JSON.parse($('zp-config').textContent);
const T = $('zp-strings').dataset;
const app = $('zp-app');
const statusLine = $('zp-status');
const TOKEN_KEY = 'zp-token-' + cfg.code;
const OUTBOX_KEY = 'zp-outbox-' + cfg.code;
const CODE_KEY = 'zp-attendee-' + cfg.code;
const REJECTED = new Set(
  'not_open unknown_question bad_value too_long empty bad_message bad_json too_large unknown_type not_allowed unknown_item hidden_item own_item flood full too_late'.split(' '),
);
const PCT = ['split', 'percentage', 'shares']; // research metrics in percent

// A translated template with {name} placeholders.
const t = (key, vals) => T[key].replace(/\{(\w+)\}/g, (m, k) => (k in vals ? vals[k] : m));

// Everything the page knows, in one place; the kind renderers read it and call its methods.
const page = {
  T,
  t,
  code: cfg.code,
  fmt: formatter(cfg.lang),
  kinds: {},
  token: load(TOKEN_KEY),
  attendee: null, // attendee-list events: the personal code
  outbox: {}, // question id -> latest answer message not yet acknowledged (and the Q&A's, startQa)
  counted: {}, // question id -> answer the server has confirmed
  results: {}, // question id -> latest results snapshot
  question: null,
  // Profile questions (state.profile) and this attendee's answers to them (the `profile`
  // message, which is the truth on every connect; a tap here fills it in meanwhile).
  asks: [],
  profile: {},
  // The attendee's unsent edit of the current question, in the kind's own form (a Set of ids,
  // the typed text, a slider's value, an order, points on two axes).
  draft: null,
  link: 'connecting',
  note: '', // server message shown until the next action
  asking: false, // the code form is the page: the status line has nothing to add
  fatal: '',
  retryTimer: 0,
  retryDelay: 2000,
  view: null, // elements of the rendered question, for updates without rebuilding
  late: false, // a scored question's deadline passed on this phone's (corrected) clock
  kind: () => page.kinds[page.question.kind] || options,
  mine,
  shown,
  toSend,
  label: (id) => (page.question.options.find((o) => o.id === id) || {}).label || '',
  edit(value) {
    page.draft = value;
    update();
  },
  tap,
  submit,
  update,
  build,
  load,
  save,
  newId,
};

// Attendee-list events: the personal code from a badge link (?a=...), kept for this event and
// taken out of the address bar (a photo of the screen must not pass it on).
const params = new URLSearchParams(location.search);
page.attendee = params.get('a') || load(CODE_KEY);
if (params.has('a')) {
  // Another attendee's badge on a phone that joined before: their voice, not the last one's
  // (nor the last one's unsent answers).
  if (cfg.attendees && page.attendee !== load(CODE_KEY)) {
    page.token = null;
    save(TOKEN_KEY, null);
    save(OUTBOX_KEY, null);
  }
  save(CODE_KEY, page.attendee);
  params.delete('a');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
}
try {
  page.outbox = JSON.parse(load(OUTBOX_KEY)) || {};
} catch {}

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

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

// Whether two answers are the same: the kind says when order does not matter; an object's
// keys (item -> point) may come in any order.
function canon(v) {
  const kind = page.kind();
  if (Array.isArray(v)) return kind.canon ? kind.canon(v) : v;
  if (v && typeof v === 'object') return Object.keys(v).sort().map((k) => [k, v[k].x, v[k].y]);
  return v;
}
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));

function mine() {
  const q = page.question;
  if (!q) return null;
  const pending = page.outbox[q.id];
  return pending ? pending.value : (page.counted[q.id] ?? null);
}

// The value the controls show: the edit, else the answer, else the kind's starting point.
function shown() {
  const kind = page.kind();
  const m = page.draft ?? mine();
  return kind.start ? kind.start(page.question, m) : m;
}

// What the send button would send; null when there is nothing to send.
function toSend() {
  const kind = page.kind();
  return kind.toSend ? kind.toSend(page) : shown();
}

// --- sending -------------------------------------------------------------

function persist() {
  const { outbox } = page;
  save(OUTBOX_KEY, Object.keys(outbox).length ? JSON.stringify(outbox) : null);
}

function submit(value, id = page.question.id) {
  page.note = '';
  // A changed answer gets a new id; a resent one keeps its id so the server can recognise it.
  page.outbox[id] = { type: 'answer', id: newId(), question: id, value };
  persist();
  flush();
  update();
}

function flush() {
  clearTimeout(page.retryTimer);
  for (const msg of Object.values(page.outbox)) if (!sock.send(msg)) break;
}

// Unavailable, rate limited, or a code this page does not know yet: the outbox again, later.
function later() {
  clearTimeout(page.retryTimer);
  page.retryTimer = setTimeout(flush, page.retryDelay * (0.75 + Math.random() / 2));
  page.retryDelay = Math.min(page.retryDelay * 2, 15000);
}

function tap(value) {
  const q = page.question;
  if (!q || !q.open || page.late) return;
  const kind = page.kind();
  if (kind.tap) kind.tap(page, value);
  else if (!same(value, mine())) submit(value);
}

// --- messages ------------------------------------------------------------

function onMessage(m) {
  if (qa.take(m) || quiz.take(m)) return;
  if (m.type === 'state') onState(m);
  else if (m.type === 'profile') page.profile = m.answers || {};
  else if (m.type === 'ack') onAck(m);
  else if (m.type === 'error') onError(m);
  else if (m.type === 'results') {
    const old = page.results[m.question];
    if (old && m.version < old.version) return;
    page.results[m.question] = m;
    paint();
  }
}

function onState(m) {
  // Quiz mode switched on since this page was made: the page with the quiz (once a minute).
  if (m.event && m.event.quiz && !cfg.quiz && !(Date.now() - load('zp-quiz-reload') < 6e4)) {
    save('zp-quiz-reload', Date.now());
    return location.reload();
  }
  if (m.event && m.event.title) $('zp-event-title').textContent = m.event.title;
  page.asks = m.profile || [];
  const before = page.question && page.question.id;
  const q = (page.question = m.question);
  if (q) {
    if (q.id !== before) {
      page.draft = null;
      page.note = '';
      qa.poll();
    }
    // A state composed just before our answer was counted may still say null: keep the ack.
    if (m.answer != null) page.counted[q.id] = m.answer;
    // A kind none of the event's questions had when the page was made (a question added
    // during the show): its module now, the plain options meanwhile.
    const later = (cfg.later_kinds || {})[q.kind];
    if (later && !page.kinds[q.kind]) {
      loadKinds({ [q.kind]: later }).then((more) => {
        Object.assign(page.kinds, more);
        build();
      });
    }
  }
  build();
}

function onAck(m) {
  const q = page.question;
  page.counted[m.question] = m.answer;
  if (m.question in page.profile) page.profile[m.question] = m.answer;
  const sent = page.outbox[m.question];
  if (sent && sent.id === m.id) {
    delete page.outbox[m.question];
    persist();
    // Keep an edit made while this answer was on its way.
    if (q && m.question === q.id && page.draft != null && same(toSend(), sent.value)) page.draft = null;
  }
  page.retryDelay = 2000;
  update();
}

function onError(m) {
  const entry = Object.values(page.outbox).find((a) => a.id === m.id);
  if (!entry && m.id) return; // about a superseded answer or a ping: nothing to tell
  if (m.code === 'revoked') return askAgain(m.message);
  // Only a definite rejection drops an answer; anything else is retried with backoff.
  if (entry && !REJECTED.has(m.code)) return later();
  if (entry) {
    delete page.outbox[entry.question];
    persist();
    const q = page.question;
    if (q && entry.question === q.id && !page.kind().keepsRejected) page.draft = null;
  }
  page.note = m.message || '';
  update();
}

// --- rendering -----------------------------------------------------------

function build() {
  const focused = document.activeElement && document.activeElement.dataset.k;
  page.view = null;
  app.replaceChildren();
  const q = page.question;
  // A profile question not answered yet comes before the poll; the current one is asked there.
  const ask = page.asks.find((p) => page.profile[p.id] == null && !page.outbox[p.id] && !(q && q.id === p.id));
  if (page.fatal) {
    app.append(el('p', 'zp-error', page.fatal, { role: 'alert' }));
  } else if (ask) {
    askProfile(ask);
  } else if (quiz.asking()) {
    quiz.form(app);
  } else if (!q) {
    app.append(...quiz.line(), el('p', 'zp-wait', T.next));
  } else {
    const kind = page.kind();
    const box = el('section', 'zp-q');
    box.classList.toggle('zp-results', q.show_results);
    // Once voting closed, the results show the attendee's answer: the inputs only take room.
    box.classList.toggle('zp-done', q.show_results && !q.open);
    const view = (page.view = { buttons: new Map(), fills: new Map(), pcts: new Map(), meas: new Map() });
    app.append(...quiz.line());
    box.append(heading(q.prompt), (view.note = el('p', 'zp-note')));
    quiz.question(q, box);
    const hint = kind.hint && kind.hint(T);
    if (hint != null) box.append((view.hint = el('p', 'zp-hint zp-in', hint)));
    kind.build(page, q, box);
    if (q.show_results) {
      box.append((view.res = el('div', 'zp-res')), (view.total = el('p', 'zp-total')), (view.cmp = el('div')));
    }
    app.append(box);
  }
  update();
  const again = focused && app.querySelector(`[data-k="${focused}"]`);
  if (again) again.focus();
}

const heading = (text) => el('h1', 'zp-prompt', text, { id: 'zp-prompt' });

// One profile question, each option one tap, "rather not say" (0) among them; asked once.
function askProfile(p) {
  const box = el('section', 'zp-q zp-profile');
  box.append(heading(p.prompt), el('p', 'zp-hint', T.once));
  buildOptions(page, { ...p, segment: 1 }, box, (id) => {
    page.profile[p.id] = id;
    submit(id, p.id);
    build();
  });
  app.append(box);
}

function update() {
  status();
  const { view, question: q } = page;
  if (!view) return;
  const kind = page.kind();
  const current = mine();
  const chosen = kind.chosen ? kind.chosen(page, current) : null;
  const open = q.open && !page.late;
  for (const [v, b] of view.buttons) {
    const on = chosen ? chosen.has(v) : current === v;
    b.setAttribute('aria-pressed', on);
    b.classList.toggle('zp-mine', on);
    b.disabled = !open;
  }
  quiz.paint();
  if (kind.refresh) kind.refresh(page, chosen);
  if (view.sync) view.sync(open);
  if (view.send) {
    const v = toSend();
    view.send.disabled = !open || v == null || (chosen && kind.blocked(page, chosen)) || same(v, current);
  }
  view.note.textContent = q.open ? '' : q.state === 'draft' ? T.waiting : T.closed;
  if (view.chart) {
    view.chart.childNodes.forEach((col, i) => col.classList.toggle('zp-mine', current === q.scale.min + i));
  }
  paint();
}

function paint() {
  const { view, question: q, fmt } = page;
  const r = view && q.show_results && page.results[q.id];
  if (!r) return;
  const sum = r.summary || {};
  const shares = sum.percent || {};
  const share = (k) => shares[k] ?? (r.total ? Math.round((100 * (r.counts[k] || 0)) / r.total) : 0);
  // Columns are scaled to the tallest so a spread-out distribution stays visible.
  let top = 100;
  if (view.chart) top = Math.max(1, ...[...view.fills.keys()].map(share));
  for (const [k, fill] of view.fills) fill.style.setProperty('--p', share(k) / top);
  for (const [k, span] of view.pcts) span.textContent = share(k) + '%';
  view.total.textContent = fmt.count(r.total) + ' ' + (r.total === 1 ? T.response : T.responses);
  if (view.chart) {
    view.chart.setAttribute('aria-label', [...view.fills.keys()].map((k) => k + ': ' + share(k) + '%').join(', '));
    const m = sum.mean;
    view.mean.textContent = m == null ? '' : T.average + ' ' + fmt.number(m, 1);
  }
  const my = mine();
  const kind = page.kind();
  view.res.replaceChildren(...(kind.paint ? kind.paint(page, q, r, sum, my) : []));
  reveal(q, r, my);
}

// A research figure's value; a mean carries the figure's unit.
function fmt(m, v, f) {
  const text = page.fmt.metric(m, v, page.question);
  return v == null || PCT.includes(m) || m === 'nps' ? text : text + (f.unit || '');
}

// After the reveal: the research figure beside the room, and where the attendee's answer sits.
function reveal(q, r, my) {
  const { view } = page;
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
    if (gap) card.append(el('p', 'zp-hint', page.label(gap.id)));
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
    if (/^https?:\/\//.test(s.url || '')) src.append(el('a', '', line, { href: s.url, rel: 'noopener noreferrer', target: '_blank' }));
    else src.textContent = line;
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
      .map((o) => t('youShare', { you: page.label(o.id), measured: fmt(m, o.measured, f) }));
  }
  const kind = page.kind();
  if (typeof my !== 'number' || !kind.numeric) return [];
  // One answer cannot have an NPS of its own: say which group it falls in.
  if (m === 'nps') {
    const g = (kind.group || group)(my);
    return [t('you' + g[0].toUpperCase() + g.slice(1), { you: my })];
  }
  const measured = c.measured ?? f.value;
  if (measured == null) return [];
  const d = Math.round((my - measured) * 10) / 10; // yours - measured
  const points = PCT.includes(m);
  const n = page.fmt.short(Math.abs(d));
  return [
    t(d > 0 ? 'youMore' : d < 0 ? 'youLess' : 'youExact', {
      you: points ? my + '%' : page.fmt.count(my),
      diff: points ? t(Math.abs(d) === 1 ? 'pp1' : 'pp', { n }) : n,
      measured: fmt(m, measured, f),
    }),
  ];
}

function status() {
  const { outbox, fatal, asking, note, link, question: q } = page;
  const pending = Object.keys(outbox).length > 0;
  let text = fatal || asking ? '' : note; // a fatal message is already announced as an alert
  let kind = text ? 'warn' : '';
  if (!text && !asking) {
    if (link !== 'open') {
      text = pending ? T.offline : T[link];
      kind = 'warn';
    } else if (pending) {
      text = T.sending;
    } else if (q && page.counted[q.id] != null) {
      text = T.received;
      kind = 'ok';
    }
  }
  if (statusLine.textContent !== text) statusLine.textContent = text;
  statusLine.dataset.kind = kind;
}

// --- the audience Q&A beside the poll ------------------------------------

// The Q&A (docs/protocol.md "Audience Q&A"): the Poll and Questions
// tabs, the ask form (templates/polls/phone.html) and the list with its votes. The server's
// list is the truth. What this phone sent waits in the page's outbox beside its answers (an
// ask as 'q' + its id, a vote or unvote as 'v' + the item: the latest tap wins) until its
// qa_ack, resent with the same id after a reconnect or a reload: nothing asked is lost and
// nothing counts twice.

function startQa(page, send) {
  const { T } = page;
  const [tabs, pollTab, qaTab, badge, pane, poll, box, left, who, name, note, list, none, go] = (
    'tabs tab-poll tab-qa qa-new qa app ask-text ask-left ask-who ask-name ask-note qa-list qa-none ask-send'
  )
    .split(' ')
    .map((id) => $('zp-' + id));
  const NAME_KEY = 'zp-qa-name'; // one name for every event on this phone
  let mode = 'off';
  let items = new Map(); // the visible items, and this phone's own that wait for a host
  let mine = new Set();
  let voted = new Set(); // the items the server counts this phone's vote on
  const seen = new Set(); // items the attendee has had in view: the badge counts the others
  let order = 'top';
  let showing = false;
  let frame = 0;
  name.value = load(NAME_KEY) || '';

  // The vote as shown: a tap on its way, else what the server counts.
  const on = (id) => (page.outbox['v' + id] ? page.outbox['v' + id].type === 'vote' : voted.has(id));
  const keep = (i) => (/^(visible|pending)$/.test(i.state) ? items.set(i.id, i) : items.delete(i.id));
  // Sendable as the server's rule has it (polls/qa.py): with some letter or digit.
  const typed = () => {
    left.textContent = t('qaLeft', { n: box.maxLength - box.value.length });
    go.disabled = !/[\p{L}\p{N}]/u.test(box.value);
  };

  function post(k, msg) {
    if (msg) page.outbox[k] = msg;
    else delete page.outbox[k];
    persist();
    if (msg) send(msg);
    draw();
    page.update(); // the status line: sending, offline
  }

  function show(qa) {
    showing = qa && mode !== 'off';
    pane.hidden = !showing;
    poll.hidden = showing;
    pollTab.setAttribute('aria-pressed', !showing);
    qaTab.setAttribute('aria-pressed', showing);
    if (!showing) pollTab.classList.remove('zp-new');
    scrollTo(0, 0);
    draw();
  }
  pollTab.onclick = () => show(false);
  qaTab.onclick = () => show(true);
  for (const b of $('zp-sort').children) {
    b.onclick = () => {
      order = b.dataset.sort;
      for (const o of b.parentNode.children) o.setAttribute('aria-pressed', o === b);
      draw();
    };
  }
  box.oninput = typed;
  typed();
  $('zp-ask').onsubmit = (e) => {
    e.preventDefault();
    const msg = { type: 'ask', id: newId(), text: box.value.trim() };
    const n = name.value.trim();
    save(NAME_KEY, n || null);
    if (!who.hidden && n) msg.name = n;
    box.value = note.textContent = '';
    typed();
    post('q' + msg.id, msg);
  };

  function take(m) {
    const k = Object.keys(page.outbox).find((k) => page.outbox[k].id === m.id && page.outbox[k].type !== 'answer');
    if (m.type === 'qa') {
      mode = m.mode;
      items = new Map();
      m.items.concat(m.pending).forEach(keep);
      mine = new Set(m.mine);
      voted = new Set(m.voted);
      tabs.hidden = mode === 'off';
      who.hidden = !m.names;
      $('zp-ask-mod').hidden = mode !== 'moderated';
      if (mode === 'off' && showing) show(false);
    } else if (m.type === 'qa_changes') {
      // In order on their line, and whole: no version to compare (a new line starts with `qa`).
      m.items.forEach(keep);
      m.removed.forEach((id) => items.delete(id));
      for (const id in m.votes) if (items.has(+id)) items.get(+id).votes = m.votes[id];
    } else if (m.type === 'qa_ack') {
      const i = m.item;
      if (k && k[0] === 'q') {
        mine.add(i.id);
        keep(i);
      } else {
        // A vote's ack is the truth about the count and the vote, not about pin or state.
        if (items.has(i.id)) items.get(i.id).votes = i.votes;
        voted[m.voted ? 'add' : 'delete'](i.id);
      }
      page.retryDelay = 2000;
      if (k) post(k);
    } else if (m.type === 'error' && k && m.code !== 'revoked') {
      if (!REJECTED.has(m.code)) return later(), true;
      // A refused ask goes back into the field, to be changed or sent again later.
      if (k[0] === 'q' && !box.value) box.value = page.outbox[k].text;
      note.textContent = m.message || '';
      if (m.code === 'not_open') {
        // Switched off while this phone was away (a phone connecting then gets no `qa`).
        tabs.hidden = true;
        mode = 'off';
        show(false);
        page.note = note.textContent;
      }
      typed();
      post(k);
    } else return false;
    draw();
    return true;
  }

  function draw() {
    if (!frame) frame = requestAnimationFrame(paint);
  }

  function paint() {
    frame = 0;
    let fresh = 0;
    for (const i of items.values()) {
      if (showing) seen.add(i.id);
      else if (!seen.has(i.id) && !mine.has(i.id)) fresh++;
    }
    badge.textContent = fresh || '';
    if (!showing) return;
    const by = order === 'top' ? (a, b) => b.votes - a.votes : () => 0;
    const rows = [...items.values()].sort((a, b) => b.pinned - a.pinned || by(a, b) || b.at - a.at || b.id - a.id);
    const focus = document.activeElement.dataset.v; // a vote button, redrawn
    list.replaceChildren(...rows.map(row));
    none.hidden = rows.length > 0;
    if (focus) list.querySelector(`[data-v="${focus}"]`)?.focus();
  }

  function row(i) {
    const own = mine.has(i.id);
    const wait = i.state === 'pending';
    const li = el('li', 'zp-card zp-qi' + (i.pinned ? ' zp-pin' : '') + (wait ? ' zp-pend' : ''));
    li.dataset.id = i.id;
    const body = el('div');
    if (i.pinned) body.append(el('p', 'zp-tag', T.qaStage));
    const about = [i.name || T.qaAnon, own && T.qaYours, wait && T.qaPending];
    body.append(el('p', '', i.text), el('p', 'zp-hint', about.filter(Boolean).join(' · ')));
    const v = on(i.id);
    // No vote on one's own item (the server refuses it too): its count only.
    const count = own
      ? el('span', 'zp-vote')
      : button('zp-vote zp-btn', null, () => post('v' + i.id, { type: v ? 'unvote' : 'vote', id: newId(), item: i.id }), {
          'data-v': i.id,
          'aria-pressed': v,
        });
    if (!own) count.append(el('span', 'zp-sr', T.qaVote));
    count.append(el('span', '', '▲', { 'aria-hidden': true }), ' ' + (i.votes + v - voted.has(i.id)));
    li.append(body, count);
    return li;
  }

  return {
    take,
    // A new question while the Questions are in view: a mark on the Poll tab.
    poll() {
      if (showing) pollTab.classList.add('zp-new');
    },
  };
}

// --- connection ----------------------------------------------------------

async function join() {
  let wait = 1000;
  let work = null; // the proof of work a busy network's joins carry (polls/joinguard.py)
  let refused = ''; // a code the server refused, left in the field to be corrected
  for (;;) {
    if (cfg.attendees && !page.attendee) page.attendee = await askCode(page.note, refused);
    const payload = {};
    if (cfg.attendees) payload.attendee = page.attendee;
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
      page.token = body.token;
      save(TOKEN_KEY, page.token);
      page.note = '';
      return true;
    }
    const message = body.error && body.error.message;
    const code = body.error && body.error.code;
    if (res && res.status === 404) {
      fail(message || T.notFound);
      return false;
    }
    page.note = res ? message || T.joinFailed : '';
    if (code === 'work_required' && body.work) {
      work = body.work;
      status();
      continue;
    }
    if (code === 'attendee_code') {
      refused = page.attendee;
      page.attendee = null;
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
    // As much as the server reads (attendees.MAX_TYPED_CHARS): a badge prints a 16-character
    // code in groups of five, 19 characters with the dashes.
    const input = el('input', 'zp-code-input', null, {
      id: 'zp-acode',
      maxlength: 64,
      autocomplete: 'off',
      spellcheck: false,
      autocapitalize: 'characters',
    });
    input.value = typed || '';
    // The whole code in view, to be checked against the badge: phone.css fits --n characters
    // (at least a generated code's 11) of about 0.84em each across the screen's width.
    const fit = () => input.style.setProperty('--n', Math.max(11, input.value.length));
    input.addEventListener('input', fit);
    fit();
    form.append(el('label', null, T.codeLabel, { for: 'zp-acode' }), input);
    if (message) {
      input.setAttribute('aria-invalid', 'true');
      form.append(el('p', 'zp-error', message, { role: 'alert' }));
    }
    form.append(el('button', 'zp-btn zp-primary', T.join));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const typed = input.value.trim();
      if (!typed) return;
      page.note = '';
      page.asking = false;
      save(CODE_KEY, typed);
      app.replaceChildren(el('p', 'zp-wait', T.connecting));
      status();
      done(typed);
    });
    app.replaceChildren(form);
    page.asking = true;
    status();
    input.focus();
  });
}

// A personal code withdrawn while the page was open: nothing sent under it will count, so
// the page forgets the code, its token and its answers, and asks for a code again (a new
// code's own answers come with its first state).
function askAgain(message) {
  sock.stop();
  page.outbox = {};
  persist();
  page.counted = {};
  page.draft = null;
  page.token = page.attendee = null;
  save(TOKEN_KEY, null);
  save(CODE_KEY, null);
  page.note = message || '';
  join().then((ok) => ok && sock.start());
}

function fail(message) {
  page.fatal = message;
  build();
}

const qa = startQa(page, (m) => sock.send(m));
// Quiz-mode events only (config.quiz, static/polls/phone-quiz.js); elsewhere it does nothing.
let quiz = { take() {}, asking() {}, line: () => [], question() {}, paint() {}, open() {} };
const sock = openSocket(
  // lang picks the language of the server's error messages.
  () => `${cfg.ws_path}?token=${encodeURIComponent(page.token)}&lang=${encodeURIComponent(cfg.lang)}`,
  {
    heartbeat: true,
    // Where WebSockets are blocked: server-sent events and POSTs next to the join URL.
    fallback: cfg.join_url.replace(/join$/, ''),
    onMessage,
    onOpen() {
      quiz.open();
      flush();
    },
    onStatus(s) {
      page.link = s;
      status();
    },
    onClose(e) {
      if (e.code === 4401) {
        page.token = null;
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
page.kinds = await loadKinds(cfg.kinds);
if (cfg.quiz) quiz = (await import(cfg.quiz)).startQuiz(page, (m) => sock.send(m));
if (page.token || (await join())) sock.start();
