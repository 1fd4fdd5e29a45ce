import { el } from '../../dom.js';
import { ends, range, sendButton, setRange, you } from '../../phone-kit.js';

// A slider between part A and part B (or one percentage, a plain guess).
export default {
  numeric: true,
  start: (q, m) => m ?? 50,
  build(page, q, box) {
    const s = q.split || {};
    const r = range('split');
    r.classList.add('zp-in');
    const val = el('p', 'zp-split zp-in');
    val.setAttribute('aria-hidden', 'true'); // the slider announces the same text
    const parts = (s.b ? [s.a, s.b] : [s.a || '']).map((name) => { // plain guess: one part
      const part = el('span');
      const n = el('b', 'zp-big');
      part.append(el('span', '', name), n);
      val.append(part);
      return n;
    });
    r.addEventListener('input', () => page.edit(+r.value));
    box.append(val, r, sendButton(page, page.T.send));
    page.view.sync = (open) => {
      const v = page.shown();
      setRange(r, v, open);
      parts.forEach((n, i) => (n.textContent = (i ? 100 - v : v) + '%'));
      r.setAttribute('aria-valuetext', s.b ? `${s.a} ${v}% · ${s.b} ${100 - v}%` : v + '%');
    };
  },
  paint(page, q, r, sum, my) {
    const { fmt } = page;
    const s = q.split || {};
    const a = sum.mean_a;
    const big = el('p', 'zp-big zp-center', a == null ? '–' : s.b ? `${fmt.short(a)} / ${fmt.short(sum.mean_b)}` : fmt.percent(a));
    const bar = el('div', 'zp-sbar');
    bar.style.setProperty('--v', (a || 0) + '%');
    if (my != null) {
      const tick = el('span', 'zp-tick');
      tick.style.setProperty('--m', my + '%');
      bar.append(tick);
    }
    const out = [big, bar, s.b ? ends(s.a, s.b) : el('p', 'zp-hint zp-center', page.T.average)];
    if (my != null) out.push(you(page, s.b ? `${my} / ${100 - my}` : my + '%'));
    return out;
  },
};
