import { el, svg } from '../../dom.js';
import { ends, range, sendButton, setRange } from '../../phone-kit.js';

// Every item placed on two 0..100 scales (a 2x2 field); the results are the room's mean points.

// A 2x2 field: numbered dots (pts) and, for the results, the attendee's own points as rings.
function quad(q, pts, rings = [], name = '') {
  const Q = q.quadrant || {};
  const box = el('div', 'zp-quad');
  const pic = svg('svg', { viewBox: '-7 -7 114 114', ...(name ? { role: 'img', 'aria-label': name } : { 'aria-hidden': true }) });
  pic.append(svg('rect', { class: 'zp-qbg', width: 100, height: 100 }), svg('path', { class: 'zp-qline', d: 'M50 0V100M0 50H100' }));
  for (const p of rings) {
    const to = pts.find((d) => d.n === p.n); // a line from the attendee's point to the room's
    if (to) pic.append(svg('path', { class: 'zp-qline', d: `M${p.x} ${100 - p.y}L${to.x} ${100 - to.y}` }));
    pic.append(svg('circle', { class: 'zp-ring', cx: p.x, cy: 100 - p.y, r: 5 }), svg('text', { class: 'zp-rn', x: p.x, y: 100 - p.y }, p.n));
  }
  for (const p of pts) {
    pic.append(svg('circle', { class: 'zp-dot', cx: p.x, cy: 100 - p.y, r: 5 }), svg('text', { x: p.x, y: 100 - p.y }, p.n));
  }
  const axis = (ax) => {
    const p = el('p', 'zp-q' + ax);
    p.append(el('span', '', Q[ax + '_low']), el('b', '', Q[ax]), el('span', '', Q[ax + '_high']));
    return p;
  };
  box.append(axis('y'), pic, axis('x'));
  return box;
}

export default {
  hint: (T) => T.quadHint,
  start(q, m) {
    const all = {};
    for (const o of q.options) {
      const p = m && m[o.id];
      all[o.id] = { x: p ? p.x : 50, y: p ? p.y : 50 };
    }
    return all;
  },
  build(page, q, box) {
    const Q = q.quadrant || {};
    const list = el('ol', 'zp-list zp-in');
    const axes = [];
    q.options.forEach((o, i) => {
      const li = el('li', 'zp-card');
      const h = el('h2', 'zp-item');
      h.append(el('span', 'zp-badge', String(i + 1)), o.label);
      li.append(h);
      for (const ax of ['x', 'y']) {
        const r = range(`q${o.id}${ax}`, `${o.label}: ${Q[ax]}`);
        const out = el('span', 'zp-v');
        const head = el('p', 'zp-axl');
        head.append(el('span', '', Q[ax]), out);
        r.addEventListener('input', () => {
          const v = page.shown();
          v[o.id][ax] = +r.value;
          page.edit(v);
        });
        li.append(head, r, ends(Q[ax + '_low'], Q[ax + '_high']));
        axes.push({ id: o.id, ax, r, out });
      }
      list.append(li);
    });
    const preview = el('div', 'zp-in');
    box.append(list, preview, sendButton(page, page.T.send));
    page.view.sync = (open) => {
      const v = page.shown();
      for (const a of axes) {
        setRange(a.r, v[a.id][a.ax], open);
        a.out.textContent = v[a.id][a.ax];
      }
      preview.replaceChildren(quad(q, q.options.map((o, i) => ({ n: i + 1, ...v[o.id] }))));
    };
  },
  paint(page, q, r, sum, my) {
    const { T, fmt } = page;
    const at = (id) => q.options.findIndex((o) => o.id === id) + 1;
    const items = (sum.items || []).filter((i) => i.x != null);
    const own = my ? q.options.map((o, i) => my[o.id] && { n: i + 1, ...my[o.id] }).filter(Boolean) : [];
    const Q = q.quadrant || {};
    const name = items.map((i) => `${page.label(i.id)}: ${Q.x} ${fmt.short(i.x)}, ${Q.y} ${fmt.short(i.y)}`);
    const legend = el('p', 'zp-hint zp-center', `● ${T.room}` + (own.length ? `   ○ ${T.mine}` : ''));
    const list = el('ol', 'zp-list zp-legend');
    q.options.forEach((o, i) => {
      const li = el('li', 'zp-item');
      li.append(el('span', 'zp-badge', String(i + 1)), o.label);
      list.append(li);
    });
    return [quad(q, items.map((i) => ({ n: at(i.id), x: i.x, y: i.y })), own, name.join('; ')), legend, list];
  },
};
