import { button, el } from './dom.js';

// The quiz on the phone (docs/protocol.md "The quiz"): the nickname (asked once per event on
// this phone, changed from the "Playing as" line), a scored question's countdown to the
// server's deadline on the server's clock, and the phone's own score once the results show.
// Small on purpose: the phone page has a budget (tests/test_views.py).

export function startQuiz(page, send) {
  const { T, t } = page;
  const ASKED = 'zp-nick-' + page.code;
  let me = null; // the server's `player`
  let asking = false;
  let sent = null; // the nickname message on its way
  let error = '';
  let typed = null; // the field's text, kept when the page is drawn again
  let offset = 0; // the server's clock minus this phone's (ms)
  let t0 = 0;
  let timer = 0;
  const scores = {}; // question id -> its `score`
  const done = () => ((asking = false), page.save(ASKED, 1));

  function take(m) {
    const mine = sent && m.id === sent.id;
    if (m.type === 'pong' && m.id === 'clock') {
      offset = m.now - (t0 + Date.now()) / 2;
      return tick(), true;
    }
    if (m.type === 'score') return (scores[m.question] = m), page.update(), true;
    if (m.type === 'player') {
      me = m;
      if (mine) done(), (typed = null);
      else if (m.nickname || m.removed) done();
      else asking ||= !page.load(ASKED);
    } else if (m.type === 'error' && mine) {
      error = T['nick_' + m.code] || m.message; // too_long and empty in a nickname's words
    }
    else return false;
    if (mine) sent = null;
    page.build();
    return true;
  }

  function nickname(name) {
    sent = { type: 'nickname', id: page.newId(), name };
    error = send(sent) ? '' : T.reconnecting;
    if (error) sent = null;
    page.build();
  }

  // In the question's place: the first time, and after "Change".
  function form(app) {
    const f = el('form', 'zp-form');
    const input = el('input', 'zp-text', null, { id: 'zp-nick', maxlength: 24, 'aria-invalid': !!error });
    input.value = typed ?? me.nickname;
    input.oninput = () => (typed = input.value);
    const go = el('button', 'zp-btn zp-primary', T.nickGo);
    // Player 12 after all: a nickname taken back, else just on with the quiz.
    const skip = button('zp-btn', t('playAs', { name: t('player', { n: me.number }) }), () =>
      me.nickname ? nickname('') : (done(), page.build()),
    );
    go.disabled = skip.disabled = !!sent;
    f.append(el('label', '', T.nickLabel, { for: 'zp-nick' }), input, el('p', 'zp-hint zp-warn', error, { role: 'alert' }), go, skip);
    f.onsubmit = (e) => {
      e.preventDefault();
      if (input.value.trim()) nickname(input.value.trim());
    };
    app.append(f);
    input.focus();
  }

  // "Playing as Anna  Change", above the question.
  function line() {
    if (!me || me.removed) return [];
    const p = el('p', 'zp-hint', t('playing', { name: me.name }) + ' ');
    p.append(button('zp-link', T.change, () => ((asking = true), (error = ''), (typed = null), page.build())));
    return [p];
  }

  // Milliseconds to the current question's deadline on the server's clock; null: no countdown.
  function left() {
    const z = page.question && page.question.quiz;
    return z && z.deadline ? z.deadline - Date.now() - offset : null;
  }

  function tick() {
    const ms = left();
    const late = (ms ?? 1) <= 0;
    const c = page.view && page.view.clock;
    if (c) {
      c.firstChild.textContent = late ? T.late : Math.ceil(ms / 1000);
      c.lastChild.textContent = late ? '' : T.left;
      c.classList.toggle('zp-late', late);
    }
    if (late || ms == null) clearInterval(timer);
    if (late !== page.late) (page.late = late), page.update();
  }

  // A scored question: its countdown while it is open, and a place for the score.
  function question(q, box) {
    clearInterval(timer);
    page.late = (left() ?? 1) <= 0;
    const z = q.quiz;
    if (!z) return;
    if (z.deadline && q.open) {
      const c = (page.view.clock = el('p', 'zp-clock', null, { role: 'timer' }));
      c.append(el('b'), el('span'));
      box.append(c);
      timer = setInterval(tick, 250);
      tick();
    }
    box.append((page.view.score = el('div')));
  }

  const shown = (q, v) =>
    q.options.length ? [v].flat().map(page.label).join(', ') : q.kind === 'split' ? v + '%' : page.fmt.short(v);

  // Once shown: the right options marked, and the phone's points, place and answer.
  function paint() {
    const { view, question: q } = page;
    const a = view && view.score && q.quiz.answer;
    if (!a) return;
    for (const [id, b] of view.buttons) b.classList.toggle('zp-ok', a.correct.includes(id));
    const s = scores[q.id];
    if (!s) return;
    const n = s.moved;
    const right = a.correct.length ? shown(q, a.correct) : a.target == null ? '' : shown(q, a.target);
    const card = el('section', 'zp-cmp zp-mark' + (s.points ? ' zp-right' : ''));
    for (const [cls, text] of [
      ['zp-big', '+' + s.points],
      ['zp-hint', t('total', { v: t(s.total === 1 ? 'point' : 'points', { n: s.total }) })],
      ['zp-big', s.place ? t('place', s) : '–'],
      [n < 0 ? 'zp-down' : 'zp-up', n ? (n > 0 ? '▲ ' : '▼ ') + t(n > 0 ? 'up' : 'down', { n: Math.abs(n) }) : ''],
      ['', s.answer == null ? T.noAnswer : t('yourAnswer', { text: shown(q, s.answer) }) + (s.points ? ' ✓ ' + T.right : ' ✗ ' + T.wrong)],
      ['zp-hint', right && t('rightAnswer', { text: right })],
    ]) {
      if (text) card.append(el('p', cls, text));
    }
    view.score.replaceChildren(card);
  }

  return {
    take,
    form,
    line,
    question,
    paint,
    asking: () => asking && me && !me.removed,
    // On every connect: the clock's offset, measured again (a reconnect may follow a sleep).
    open() {
      t0 = Date.now();
      send({ type: 'ping', id: 'clock' });
    },
  };
}
