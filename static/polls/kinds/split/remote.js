import { clamp, el, isNum } from '../../dom.js';

// The room's mean A / B over one bar.
export default {
  build(q, view, page) {
    const sp = q.split || { a: '', b: '' };
    view.headLabel.textContent = sp.b ? `${sp.a} / ${sp.b}` : sp.a || page.T.average;
    const bar = el('span', 'hs-bar hs-splitbar');
    bar.classList.toggle('hs-plain', !sp.b);
    view.splitFill = el('span', 'hs-fill');
    bar.append(view.splitFill);
    return [view.headNode, bar];
  },
  paint(q, s, view, page) {
    const { fmt } = page;
    const a = isNum(s.mean_a) ? s.mean_a : null;
    const b = isNum(s.mean_b) ? s.mean_b : a == null ? null : 100 - a;
    view.head.textContent = a == null ? '–' : q.split && q.split.b ? `${fmt.short(a)} / ${fmt.short(b)}` : fmt.percent(a);
    view.splitFill.style.setProperty('--p', a == null ? 0 : clamp(a / 100, 0, 1));
  },
};
