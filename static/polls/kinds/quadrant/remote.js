import { el, isNum } from '../../dom.js';
import { itemList } from '../../remote-kit.js';

// Each item's mean point on the two axes and the corner most put it in.
const ARROWS = { tl: '↖', tr: '↗', bl: '↙', br: '↘' };

export default {
  build: (q, view) => [itemList(q, view)],
  paint(q, s, view, page) {
    const { fmt } = page;
    const axes = q.quadrant || {};
    const items = Array.isArray(s.items) ? s.items : [];
    view.list.replaceChildren(
      ...items.map((it) => {
        const qs = it.quadrants || {};
        let best = null;
        for (const c of ['tl', 'tr', 'bl', 'br']) if ((qs[c] || 0) > 0 && (!best || qs[c] > qs[best])) best = c;
        const where =
          isNum(it.x) && isNum(it.y) ? `${axes.x || 'x'} ${fmt.short(it.x)} · ${axes.y || 'y'} ${fmt.short(it.y)}` : '–';
        const li = el('li', 'hs-item');
        li.append(el('span', 'hs-label', view.labels.get(String(it.id)) || ''), el('b', 'hs-pct', best ? `${where} ${ARROWS[best]}` : where));
        return li;
      }),
    );
  },
};
