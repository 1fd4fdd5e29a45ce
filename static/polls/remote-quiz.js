import { $ } from './dom.js';

// The quiz on the remote: a scored question's time left, counted to the server's deadline on
// the server's clock (the offset from a ping's `now` at every connect), as the stage shows it.
// The "Scored" badge and the podium's button are the server's page (templates/polls/host.html).

export function remoteQuiz(page, send) {
  const timer = $('zp-timer'); // only for a scored question
  let offset = 0; // the server's clock minus this phone's (ms)
  let t0 = 0;
  let ticking = 0;

  function tick() {
    const q = page.question;
    const z = q && q.quiz;
    const ms = z && z.deadline && q.open ? z.deadline - Date.now() - offset : null;
    timer.hidden = ms == null;
    if (ms == null || ms <= 0) clearInterval(ticking), (ticking = 0);
    if (ms != null) timer.textContent = ms > 0 ? page.T.timeLeft.replace('{n}', Math.ceil(ms / 1000)) : page.T.late;
  }

  return {
    // After every state: the countdown, if one runs.
    paint() {
      if (!timer) return;
      if (!ticking) ticking = setInterval(tick, 250);
      tick();
    },
    take(m) {
      if (m.type !== 'pong' || m.id !== 'clock') return false;
      offset = m.now - (t0 + Date.now()) / 2;
      if (timer) tick();
      return true;
    },
    open() {
      t0 = Date.now();
      send({ type: 'ping', id: 'clock' });
    },
  };
}
