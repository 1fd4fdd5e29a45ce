import { el, isNum } from '../../dom.js';
import { itemList } from '../../remote-kit.js';

// The leader and its mean rank, then every item by points.
export default {
  build: (q, view) => [view.headNode, itemList(q, view)],
  paint(q, s, view, page) {
    const { T, fmt } = page;
    const items = Array.isArray(s.items) ? s.items : [];
    const first = items[0];
    view.head.textContent = first ? view.labels.get(String(first.id)) || '–' : '–';
    view.headLabel.textContent = first && isNum(first.mean_rank) ? `${T.meanRank} ${fmt.number(first.mean_rank, 1)}` : '';
    view.list.replaceChildren(
      ...items.map((it, i) => {
        const li = el('li', 'hs-item');
        li.append(
          el('span', 'hs-label', `${i + 1}. ${view.labels.get(String(it.id)) || ''}`),
          el('b', 'hs-pct', `${fmt.count(it.points || 0)} ${T.points}`),
        );
        return li;
      }),
    );
  },
};
