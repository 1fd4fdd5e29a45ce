import { el, isNum } from '../../dom.js';
import { calm, fitter } from '../../stage-kit.js';
import { segmentCards, topList } from '../../stage-segments.js';

// Best first by points, bars proportional to points; rows glide to their new places.
function buildRanking(q, page) {
  const { T, fmt } = page;
  const node = el('div', 'st-vis st-rankbox');
  const list = el('ol', 'st-rank');
  list.style.setProperty('--n', Math.max(1, q.options.length));
  const rows = new Map();
  for (const o of q.options) {
    const li = el('li', 'st-rk');
    const place = el('b', 'st-rk-pos', '');
    const track = el('span', 'st-track');
    const fill = el('span', 'st-fill');
    track.append(fill);
    const pts = el('b', 'st-rk-pts', '0');
    const mr = el('span', 'st-rk-mr', '');
    li.append(place, el('span', 'st-label', o.label), track, pts, mr);
    list.append(li);
    rows.set(String(o.id), { li, place, fill, pts, mr });
  }
  node.append(list);
  const fit = fitter(list);
  let order = q.options.map((o) => String(o.id));

  function paint(r) {
    const items = (r.summary && Array.isArray(r.summary.items) ? r.summary.items : []).filter((i) => rows.has(String(i.id)));
    const byId = new Map(items.map((i) => [String(i.id), i]));
    const next = items.map((i) => String(i.id));
    for (const id of order) if (!byId.has(id)) next.push(id);
    const top = Math.max(1, ...items.map((i) => (isNum(i.points) ? i.points : 0)));
    list.classList.toggle('st-empty', !items.length); // no leader before the first answer
    next.forEach((id, n) => {
      const row = rows.get(id);
      const it = byId.get(id);
      const points = it && isNum(it.points) ? it.points : 0;
      row.place.textContent = String(n + 1);
      row.fill.style.setProperty('--p', points / top);
      row.pts.textContent = `${fmt.count(points)} ${T.points}`;
      row.mr.textContent = it && isNum(it.mean_rank) ? `${T.meanRank} ${fmt.number(it.mean_rank, 1)}` : '';
    });
    if (next.join() === order.join()) return;
    // FLIP: rows glide to their new places instead of jumping.
    const before = new Map(next.map((id) => [id, rows.get(id).li.getBoundingClientRect().top]));
    list.replaceChildren(...next.map((id) => rows.get(id).li));
    order = next;
    if (calm.matches) return;
    for (const id of next) {
      const li = rows.get(id).li;
      const dy = before.get(id) - li.getBoundingClientRect().top;
      if (!dy) continue;
      // Rows climbing pass in front; rows dropping fade back so the two never read as one.
      const frames = dy > 0 ? [{ transform: `translateY(${dy}px)`, zIndex: 1 }, { transform: 'none', zIndex: 1 }] : [{ transform: `translateY(${dy}px)`, opacity: 0.25 }, { transform: 'none', opacity: 1 }];
      li.animate(frames, { duration: 600, easing: 'ease' });
    }
  }
  return { node, paint, dispose: fit.dispose };
}

// By segment: each group's top three, with their points.
function rankingSegments(q, page, r) {
  const labels = new Map(q.options.map((o) => [String(o.id), o.label]));
  return segmentCards(q, page, r, (box) => {
    const show = topList(box, 3);
    return (g) => {
      const items = (g.summary && Array.isArray(g.summary.items) ? g.summary.items : []).filter((i) => labels.has(String(i.id)) && isNum(i.points));
      items.sort((a, b) => b.points - a.points);
      show(items.map((i) => [labels.get(String(i.id)), `${page.fmt.count(i.points)} ${page.T.points}`]));
    };
  });
}

export default { build: buildRanking, segments: rankingSegments };
