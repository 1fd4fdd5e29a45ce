import { button, el } from '../../dom.js';
import { rows, sendButton } from '../../phone-kit.js';

// The options put in order with up/down buttons, best first; the results by points.
export default {
  hint: (T) => T.rankHint,
  start(q, m) {
    const ids = q.options.map((o) => o.id);
    const order = Array.isArray(m) ? m.filter((id) => ids.includes(id)) : [];
    return [...order, ...ids.filter((id) => !order.includes(id))];
  },
  build(page, q, box) {
    const { t } = page;
    const list = el('ol', 'zp-list zp-in');
    const items = new Map();
    const live = el('p', 'zp-sr', null, { 'aria-live': 'polite' });
    const move = (id, d) => {
      const order = page.shown();
      const i = order.indexOf(id);
      const j = i + d;
      if (j < 0 || j >= order.length) return;
      [order[i], order[j]] = [order[j], order[i]];
      page.edit(order);
      const r = items.get(id);
      const b = d < 0 ? r.up : r.down; // moving the row took its focus away
      (b.disabled ? (d < 0 ? r.down : r.up) : b).focus();
      live.textContent = t('moved', { label: page.label(id), n: j + 1 });
    };
    for (const o of q.options) {
      const li = el('li', 'zp-rrow');
      const n = el('span', 'zp-rnum');
      const [up, down] = [-1, 1].map((d) =>
        button('zp-mv', d < 0 ? '▲' : '▼', () => move(o.id, d), {
          'data-k': (d < 0 ? 'u' : 'd') + o.id,
          'aria-label': t(d < 0 ? 'moveUp' : 'moveDown', { label: o.label }),
        }),
      );
      li.append(n, el('span', 'zp-label', o.label), up, down);
      items.set(o.id, { li, n, up, down });
    }
    box.append(list, live, sendButton(page, page.T.sendRanking));
    page.view.sync = (open) => {
      const order = page.shown();
      order.forEach((id, i) => {
        const r = items.get(id);
        if (list.children[i] !== r.li) list.insertBefore(r.li, list.children[i] || null);
        r.n.textContent = i + 1;
        r.up.disabled = !open || i === 0;
        r.down.disabled = !open || i === order.length - 1;
      });
    };
  },
  paint(page, q, r, sum, my) {
    const { t, fmt } = page;
    const items = sum.items || [];
    const most = Math.max(1, ...items.map((i) => i.points));
    const order = Array.isArray(my) ? my : [];
    return [rows(items.map((i, n) => ({
      label: `${n + 1}. ${page.label(i.id)}`,
      value: t(i.points === 1 ? 'point' : 'points', { n: fmt.count(i.points) }),
      p: i.points / most,
      sub: order.includes(i.id) ? t('you', { v: order.indexOf(i.id) + 1 }) : '',
    })))];
  },
};
