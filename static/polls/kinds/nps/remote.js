import { el, isNum } from '../../dom.js';

// The score over detractors | passives | promoters.
export default {
  build(q, view, page) {
    view.headLabel.textContent = page.T[q.kind];
    const tri = el('div', 'hs-tri');
    const key = el('p', 'hs-trikey');
    view.groups = ['detractors', 'passives', 'promoters'].map((name) => {
      const seg = el('span', `hs-seg hs-seg-${name}`);
      tri.append(seg);
      const text = el('span', `hs-tk hs-tk-${name}`);
      key.append(text);
      return { name, seg, text };
    });
    return [view.headNode, tri, key];
  },
  paint(q, s, view, page) {
    view.head.textContent = isNum(s.score) ? page.fmt.number(s.score, 0, true) : '–';
    for (const g of view.groups) {
      const v = isNum(s[g.name]) ? s[g.name] : 0;
      g.seg.style.flexGrow = String(v);
      g.text.textContent = `${page.T[g.name]} ${v}%`;
    }
  },
};
