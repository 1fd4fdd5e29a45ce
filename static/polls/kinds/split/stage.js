import { clamp, el, isNum } from '../../dom.js';
import { figure, segmentCards, track } from '../../stage-segments.js';

// The room's mean A | B, a marker at the research, the spread in 10-point bins underneath.
function buildSplit(q, page) {
  const { T, fmt } = page;
  const sp = q.split || { a: '', b: '' };
  const plain = !sp.b;
  const node = el('div', 'st-vis st-split');
  node.classList.toggle('st-plain', plain);
  const head = el('div', 'st-sp-head');
  const aBox = el('div', 'st-sp-a');
  const aPct = el('b', 'st-sp-pct', '–');
  aBox.append(el('span', 'st-sp-name', sp.a || T.average), aPct);
  head.append(aBox);
  const bPct = el('b', 'st-sp-pct', '–');
  if (!plain) {
    const bBox = el('div', 'st-sp-b');
    bBox.append(el('span', 'st-sp-name', sp.b), bPct);
    head.append(bBox);
  }
  const barWrap = el('div', 'st-sp-barwrap');
  const bar = el('div', 'st-sp-bar');
  const fill = el('span', 'st-sp-fill');
  bar.append(fill);
  const mark = el('div', 'st-sp-mark');
  const chip = el('span', 'st-sp-chip');
  const chipVal = el('b', '');
  const chipSrc = el('span', '');
  chip.append(chipVal, chipSrc);
  mark.append(chip);
  barWrap.append(bar, mark);
  const bins = el('div', 'st-sp-bins');
  const binFills = [];
  const binCounts = [];
  for (let i = 0; i < 10; i++) {
    const col = el('div', 'st-sp-bin');
    const c = el('span', 'st-sp-bcount', '');
    const b = el('span', 'st-sp-bbar');
    const f = el('span', 'st-fill');
    b.append(f);
    col.append(c, b);
    bins.append(col);
    binFills.push(f);
    binCounts.push(c);
  }
  const ticks = el('div', 'st-sp-ticks');
  for (let t = 0; t <= 100; t += 10) {
    const s = el('span', '', fmt.count(t));
    s.style.setProperty('--x', t / 100);
    ticks.append(s);
  }
  node.append(head, barWrap, bins, ticks);

  function paint(r, rs) {
    const s = r.summary || {};
    const a = isNum(s.mean_a) ? s.mean_a : null;
    const b = isNum(s.mean_b) ? s.mean_b : a == null ? null : 100 - a;
    aPct.textContent = fmt.percent(a);
    bPct.textContent = fmt.percent(b);
    fill.style.setProperty('--p', a == null ? 0 : clamp(a / 100, 0, 1));
    bar.classList.toggle('st-empty', a == null);
    const counts = (s.bins && typeof s.bins === 'object' && s.bins) || {};
    const vals = binFills.map((_, i) => Number(counts[String(i * 10)]) || 0);
    const top = Math.max(1, ...vals);
    vals.forEach((v, i) => {
      binFills[i].style.setProperty('--p', v / top);
      binCounts[i].textContent = v ? fmt.count(v) : '';
    });
    const on = !!rs && (rs.metric === 'split' || rs.metric === 'percentage') && isNum(rs.measured);
    node.classList.toggle('st-cmp', on);
    if (!on) return;
    const x = clamp(rs.measured / 100, 0, 1);
    mark.style.setProperty('--x', x);
    chipVal.textContent = fmt.metric(rs.metric === 'split' ? 'split' : 'percentage', rs.measured, q);
    chipSrc.textContent = rs.year ? String(rs.year) : ''; // the panel beside names the source
  }
  return { node, paint };
}

// By segment: each group's mean split, the bar filled to part A, its research marked.
function splitSegments(q, page, r) {
  return segmentCards(q, page, r, (box) => {
    const show = figure(box);
    const place = track(box);
    return (g) => {
      const a = g.summary && isNum(g.summary.mean_a) ? g.summary.mean_a : null;
      const b = g.summary && isNum(g.summary.mean_b) ? g.summary.mean_b : a == null ? null : 100 - a;
      if (a == null) show('–');
      else if (q.split && q.split.b) show(page.fmt.short(a), ' / ' + page.fmt.short(b));
      else show(page.fmt.percent(a));
      const c = g.c && (g.c.metric === 'split' || g.c.metric === 'percentage') ? g.c.measured : null;
      place(a == null ? null : a / 100, isNum(c) ? c / 100 : null);
    };
  });
}

export default { build: buildSplit, segments: splitSegments };
