import { clamp, el, isNum, svg } from '../../dom.js';
import { fitter } from '../../stage-kit.js';
import { segmentCards } from '../../stage-segments.js';

// A 2x2 scatter of each item's mean point, the items listed beside with their commonest corner.
const ARROWS = { tl: '↖', tr: '↗', bl: '↙', br: '↘' };
const DOT_COLOURS = 8;

function buildQuadrant(q, page) {
  const { fmt } = page;
  const qd = q.quadrant || {};
  const node = el('div', 'st-vis st-quad');
  const wrap = el('div', 'st-qwrap');
  const ylab = el('div', 'st-qy');
  ylab.append(el('span', 'st-q-end', qd.y_high || ''), el('b', 'st-q-axis', qd.y || ''), el('span', 'st-q-end', qd.y_low || ''));
  const plot = el('div', 'st-qplot');
  const g = svg('svg', { viewBox: '0 0 100 100', class: 'st-qsvg', 'aria-hidden': 'true' });
  for (const [x, y, c] of [[0, 0, 'tl'], [50, 0, 'tr'], [0, 50, 'bl'], [50, 50, 'br']]) {
    g.append(svg('rect', { x, y, width: 50, height: 50, class: `st-q-cell st-q-${c}` }));
  }
  g.append(svg('line', { x1: 50, x2: 50, y1: 0, y2: 100, class: 'st-q-mid' }));
  g.append(svg('line', { x1: 0, x2: 100, y1: 50, y2: 50, class: 'st-q-mid' }));
  g.append(svg('rect', { x: 0, y: 0, width: 100, height: 100, class: 'st-q-frame' }));
  const dotsLayer = svg('g', {});
  g.append(dotsLayer);
  plot.append(g);
  const xlab = el('div', 'st-qx');
  xlab.append(el('span', 'st-q-end', qd.x_low || ''), el('b', 'st-q-axis', qd.x || ''), el('span', 'st-q-end', qd.x_high || ''));
  wrap.append(ylab, plot, el('span', ''), xlab);
  const legend = el('ol', 'st-qlegend');
  legend.style.setProperty('--n', Math.max(1, q.options.length));
  const items = new Map();
  q.options.forEach((o, i) => {
    const c = `st-d${i % DOT_COLOURS}`;
    const dot = svg('g', { class: `st-q-dot ${c}` });
    dot.append(svg('circle', { r: 5.2 }), svg('text', { class: 'st-q-num' }, String(i + 1)));
    dotsLayer.append(dot);
    const li = el('li', 'st-qi');
    const stat = el('span', 'st-qi-stat');
    li.append(el('b', `st-qi-num ${c}`, String(i + 1)), el('span', 'st-qi-label', o.label), stat);
    legend.append(li);
    items.set(String(o.id), { dot, stat });
  });
  node.append(wrap, legend);
  const fit = fitter(legend);

  function paint(r) {
    const list = r.summary && Array.isArray(r.summary.items) ? r.summary.items : [];
    const byId = new Map(list.map((i) => [String(i.id), i]));
    for (const [id, { dot, stat }] of items) {
      const it = byId.get(id);
      const ok = it && isNum(it.x) && isNum(it.y);
      dot.classList.toggle('st-on', !!ok);
      if (ok) dot.style.transform = `translate(${clamp(it.x, 0, 100)}px, ${100 - clamp(it.y, 0, 100)}px)`;
      const qs = (it && it.quadrants) || {};
      let best = null;
      let sum = 0;
      for (const c of ['tl', 'tr', 'bl', 'br']) {
        const v = Number(qs[c]) || 0;
        sum += v;
        if (v > 0 && (!best || v > qs[best])) best = c;
      }
      stat.textContent = best ? `${ARROWS[best]} ${fmt.count(qs[best])} / ${fmt.count(sum)}` : '';
    }
  }
  return { node, paint, dispose: fit.dispose };
}

// By segment: small multiples, each group's mean points on its own 2x2; the items named once.
function quadrantSegments(q, page, r) {
  const ids = q.options.map((o) => String(o.id));
  const cards = segmentCards(q, page, r, (box) => {
    const g = svg('svg', { viewBox: '-6 -6 112 112', class: 'st-qsvg st-sg-q', 'aria-hidden': 'true' });
    g.append(svg('rect', { x: 0, y: 0, width: 100, height: 100, class: 'st-q-frame' }));
    g.append(svg('line', { x1: 50, x2: 50, y1: 0, y2: 100, class: 'st-q-mid' }));
    g.append(svg('line', { x1: 0, x2: 100, y1: 50, y2: 50, class: 'st-q-mid' }));
    const dots = ids.map((id, i) => {
      const dot = svg('g', { class: `st-q-dot st-d${i % DOT_COLOURS}` });
      dot.append(svg('circle', { r: 7 }), svg('text', { class: 'st-q-num' }, String(i + 1)));
      g.append(dot);
      return dot;
    });
    box.append(g);
    return (grp) => {
      const items = grp.summary && Array.isArray(grp.summary.items) ? grp.summary.items : [];
      const byId = new Map(items.map((i) => [String(i.id), i]));
      ids.forEach((id, i) => {
        const it = byId.get(id);
        const ok = it && isNum(it.x) && isNum(it.y);
        dots[i].classList.toggle('st-on', !!ok);
        if (ok) dots[i].style.transform = `translate(${clamp(it.x, 0, 100)}px, ${100 - clamp(it.y, 0, 100)}px)`;
      });
    };
  });
  const node = el('div', 'st-sg-quad');
  const key = el('ol', 'st-sg-qkey');
  q.options.forEach((o, i) => {
    const li = el('li', '');
    li.append(el('b', `st-qi-num st-d${i % DOT_COLOURS}`, String(i + 1)), el('span', '', o.label));
    key.append(li);
  });
  const qd = q.quadrant || {};
  if (qd.x || qd.y) key.append(el('li', 'st-sg-axes', [qd.x && qd.x + ' →', qd.y && qd.y + ' ↑'].filter(Boolean).join('  ·  ')));
  node.append(cards.node, key);
  return { node, paint: cards.paint };
}

export default { build: buildQuadrant, segments: quadrantSegments };
