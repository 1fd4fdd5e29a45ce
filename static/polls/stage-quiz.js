import { $, el, isNum } from './dom.js';
import { calm } from './stage-kit.js';

// The quiz on the stage (docs/protocol.md "The quiz"): a scored question's countdown to the
// server's deadline (on the server's clock: a ping's `now` at every connect gives the offset),
// and once its results are shown the right answer (or the research value it was scored
// against) over the room's result, with the leaderboard beside it; with the podium on, the
// top three on their steps (2nd, 1st, 3rd) and places 4 to 10 in the whole screen's place.
// Calm motion: rows and steps come in once per new board, nothing moves while it stands.

const ESTIMATES = ['scale', 'ces', 'split'];

export function stageQuiz(page, root, send) {
  const { T, fmt } = page;
  const timer = $('zp-timer');
  const board = $('zp-board');
  const podium = $('zp-podium');
  const headline = el('p', 'st-answer');
  let offset = 0; // the server's clock minus this screen's (ms)
  let t0 = 0;
  let ticking = 0;
  let last = null; // the latest `leaderboard`
  let drawn = ''; // what the board and the podium show, so an equal message redraws nothing

  const players = (n) => fmt.count(n) + ' ' + (n === 1 ? T.player : T.players);

  function left() {
    const q = page.question;
    const z = q && q.quiz;
    return z && z.deadline && q.open ? z.deadline - Date.now() - offset : null;
  }

  function tick() {
    const ms = left();
    timer.hidden = ms == null;
    if (ms == null) return clearInterval(ticking), (ticking = 0);
    const late = ms <= 0;
    timer.firstChild.textContent = late ? T.late : Math.ceil(ms / 1000);
    timer.lastChild.textContent = late ? '' : T.left;
    timer.classList.toggle('st-late', late);
    timer.classList.toggle('st-soon', !late && ms <= 5000);
    if (late) clearInterval(ticking), (ticking = 0);
  }

  // What the question was scored against: its correct options, else the target, which is the
  // research's value when a linked figure measured it.
  function answerText(q) {
    const a = q.quiz && q.quiz.answer;
    if (!a) return '';
    if (a.correct.length) {
      const labels = q.options.filter((o) => a.correct.includes(o.id)).map((o) => o.label);
      return page.t('rightAnswer', { text: labels.join(', ') });
    }
    if (!isNum(a.target) || !ESTIMATES.includes(q.kind)) return '';
    const text = q.kind === 'split' ? fmt.percent(a.target) : fmt.short(a.target);
    const research = (q.figures || []).some((f) => isNum(f.value) && Math.abs(f.value - a.target) < 1e-9);
    return page.t(research ? 'researchIs' : 'rightAnswer', { text });
  }

  function moved(n) {
    const m = el('span', 'st-lb-move');
    if (n == null) {
      m.textContent = T.new;
      m.classList.add('st-new');
    } else if (n) {
      m.textContent = (n > 0 ? '▲' : '▼') + Math.abs(n);
      m.classList.add(n > 0 ? 'st-up' : 'st-down');
      m.setAttribute('aria-label', page.t(n > 0 ? 'up' : 'down', { n: Math.abs(n) }));
    }
    return m;
  }

  function row(r, i) {
    const li = el('li', 'st-lb-row');
    li.style.setProperty('--i', i);
    const gained = el('span', 'st-lb-gain', r.gained ? '+' + fmt.count(r.gained) : '');
    li.append(el('b', 'st-lb-place', r.place), el('span', 'st-lb-name', r.name), gained, el('b', 'st-lb-pts', fmt.count(r.points)), moved(r.moved));
    return li;
  }

  function drawBoard(m) {
    const head = el('header', 'st-lb-top');
    head.append(el('h2', 'st-lb-title', T.leaderboard), el('p', 'st-lb-facts', players(m.players)));
    const right = el('p', 'st-lb-right', page.t('rightOf', { right: fmt.count(m.right), answered: fmt.count(m.answered) }));
    const list = el('ol', 'st-lb');
    list.append(...m.top.map(row));
    board.replaceChildren(head, right, list);
  }

  function drawPodium(m) {
    const steps = el('ol', 'st-pd-steps');
    // 2nd, 1st, 3rd from the left; equal points share a place, and a step its height.
    for (const i of [1, 0, 2]) {
      const r = m.top[i];
      const li = el('li', 'st-pd-step');
      li.dataset.place = r ? Math.min(r.place, 3) : i + 1;
      if (r) {
        const who = el('p', 'st-pd-who');
        who.append(el('span', 'st-pd-name', r.name), el('b', 'st-pd-pts', fmt.count(r.points)));
        li.append(who, el('span', 'st-pd-block', r.place));
      } else li.classList.add('st-pd-empty');
      steps.append(li);
    }
    const rest = el('ol', 'st-lb st-pd-rest');
    rest.append(...m.top.slice(3, 10).map((r, i) => row(r, i + 3)));
    const head = el('header', 'st-lb-top');
    head.append(el('h2', 'st-lb-title', T.podium), el('p', 'st-lb-facts', players(m.players)));
    podium.replaceChildren(head, steps, rest);
    podium.classList.toggle('st-pd-alone', m.top.length <= 3);
  }

  // After every state and every leaderboard: what shows, and the countdown's clock.
  function paint() {
    const q = page.question;
    const onPodium = !!page.podium;
    const shown = !onPodium && q && q.quiz && q.quiz.answer && last && !last.podium && last.question === q.id;
    const pd = onPodium && last && last.podium;
    root.classList.toggle('st-is-podium', onPodium);
    root.classList.toggle('st-is-board', !!shown);
    board.hidden = !shown;
    podium.hidden = !onPodium;
    const key = pd ? 'p' + JSON.stringify(last) : shown ? JSON.stringify(last) : '';
    if (key !== drawn) {
      drawn = key;
      if (pd) drawPodium(last);
      else if (shown) drawBoard(last);
      for (const n of [board, podium]) n.classList.toggle('st-still', calm.matches);
    }
    // The right answer under the prompt, and the correct options' bars marked.
    const text = q ? answerText(q) : '';
    headline.textContent = text;
    const prompt = root.querySelector('.st-prompt');
    if (text && prompt && headline.previousSibling !== prompt) prompt.after(headline);
    if (!text) headline.remove();
    const correct = (q && q.quiz && q.quiz.answer && q.quiz.answer.correct) || [];
    const rows = root.querySelectorAll('.st-main .st-opts > .st-opt');
    if (q && rows.length === q.options.length) {
      rows.forEach((li, i) => li.classList.toggle('st-right', correct.includes(q.options[i].id)));
    }
    if (left() != null && !ticking) ticking = setInterval(tick, 250);
    tick();
  }

  return {
    paint,
    take(m) {
      if (m.type === 'pong' && m.id === 'clock') {
        offset = m.now - (t0 + Date.now()) / 2;
        tick();
      } else if (m.type === 'leaderboard') {
        last = m;
        paint();
      } else return false;
      return true;
    },
    // On every connect: the clock's offset, measured again.
    open() {
      t0 = Date.now();
      send({ type: 'ping', id: 'clock' });
    },
  };
}
