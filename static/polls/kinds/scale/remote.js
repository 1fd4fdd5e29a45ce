import { el, isNum } from '../../dom.js';

// The mean, over a column per mark.
export default {
  build(q, view, page) {
    if (!q.scale) return null; // drawn as its options
    view.headLabel.textContent = page.T.average;
    const cols = el('div', 'hs-cols');
    for (let v = q.scale.min; v <= q.scale.max; v++) {
      const col = el('span', 'hs-col');
      const fill = el('span', 'hs-fill');
      col.append(fill, el('span', 'hs-val', String(v)));
      cols.append(col);
      view.fills.set(String(v), fill);
    }
    view.scale = true; // columns scale to the tallest
    return [view.headNode, cols];
  },
  paint(q, s, view, page) {
    view.head.textContent = isNum(s.mean) ? page.fmt.number(s.mean, 1) : '–';
  },
};
