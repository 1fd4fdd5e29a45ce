import { clamp, el, isNum } from '../../dom.js';
import { figure, segmentCards, track } from '../../stage-segments.js';

// A report mark (and CES): the big mean beside the distribution, the research mean marked on it.
function buildMean(q, page, note) {
  if (!q.scale) return null; // drawn as its options, or as nothing
  const { T, fmt } = page;
  const { min, max } = q.scale;
  const node = el('div', 'st-vis st-scale');
  const cols = el('div', 'st-cols');
  const n = max - min + 1;
  const fills = new Map();
  const pcts = new Map();
  for (let v = min; v <= max; v++) {
    const key = String(v);
    const p = el('span', 'st-cpct', '0%');
    const bar = el('span', 'st-bar');
    const fill = el('span', 'st-fill');
    bar.append(fill);
    const col = el('div', 'st-col');
    col.append(p, bar, el('span', 'st-val', key));
    cols.append(col);
    fills.set(key, fill);
    pcts.set(key, p);
  }
  const plot = el('div', 'st-plot');
  plot.style.setProperty('--n', n);
  plot.classList.toggle('st-dense', n > 11);
  const axis = el('div', 'st-axis');
  const mark = el('div', 'st-mark');
  const markLabel = el('span', 'st-mark-label');
  const markVal = el('b', '');
  const markSrc = el('span', '');
  markLabel.append(markVal, markSrc);
  mark.append(markLabel);
  axis.append(mark);
  plot.append(cols, axis);
  const ends = el('div', 'st-ends');
  ends.append(el('span', '', q.scale.min_label || ''), el('span', '', q.scale.max_label || ''));
  const chart = el('div', 'st-chart');
  chart.append(plot, ends);

  // The room's mean; once revealed the measured mean stands right beside it (the research panel).
  const meanVal = el('b', 'st-mean-val', '–');
  const side = el('div', 'st-mean');
  side.append(meanVal, el('span', 'st-mean-label', T.average));
  if (note) {
    side.append(el('p', 'st-mean-note', q.scale.lower_is_better ? T.lowerBetter : T.higherBetter));
  }
  node.append(chart, side);

  function paint(r, rs) {
    const p = (r.summary && r.summary.percent) || {};
    const counts = r.counts || {};
    const total = r.total || 0;
    const share = (k) => p[k] ?? (total ? Math.round((100 * (counts[k] || 0)) / total) : 0);
    // Columns are scaled to the tallest so the shape of the distribution fills the chart.
    const top = Math.max(1, ...[...fills.keys()].map(share));
    for (const [k, fill] of fills) fill.style.setProperty('--p', share(k) / top);
    for (const [k, s] of pcts) s.textContent = share(k) + '%';
    const m = r.summary && r.summary.mean;
    meanVal.textContent = isNum(m) ? fmt.number(m, 1) : '–';
    const on = !!rs && (rs.metric === 'mean' || rs.metric === 'ces') && isNum(rs.measured);
    node.classList.toggle('st-cmp', on);
    if (!on) return;
    let v = rs.measured;
    const fs = rs.f && rs.f.scale;
    // A figure measured on another scale is placed proportionally on this one.
    if (fs && isNum(fs.min) && isNum(fs.max) && fs.max > fs.min && (fs.min !== min || fs.max !== max)) {
      v = min + ((v - fs.min) / (fs.max - fs.min)) * (max - min);
    }
    const x = clamp((v - min) / (max - min), 0, 1);
    mark.style.setProperty('--x', x);
    markVal.textContent = fmt.number(rs.measured, 1);
    markSrc.textContent = rs.year ? String(rs.year) : ''; // the panel beside names the source
  }
  return { node, paint };
}

// By segment: each group's mean, on a track of the scale with its own research marked.
function meanSegments(q, page, r) {
  if (!q.scale) return null;
  const { min, max } = q.scale;
  const at = (v) => (isNum(v) && max > min ? (v - min) / (max - min) : null);
  return segmentCards(q, page, r, (box) => {
    const show = figure(box);
    const place = track(box);
    return (g) => {
      const m = g.summary && g.summary.mean;
      show(isNum(m) ? page.fmt.number(m, 1) : '–');
      place(at(m), g.c && (g.c.metric === 'mean' || g.c.metric === 'ces') ? at(g.c.measured) : null);
    };
  });
}

export const meanKind = (note) => ({ build: (q, page) => buildMean(q, page, note), segments: meanSegments });

export default meanKind(false);
