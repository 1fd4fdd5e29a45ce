import { clamp, el, isNum, svg } from '../../dom.js';
import { figure, segmentCards } from '../../stage-segments.js';

// The gauge -100..+100 with the research marked on it, then detractors | passives | promoters.
const GX = 100;
const GY = 100;
const GR = 80;
function gaugePoint(score, radius) {
  const a = Math.PI * (1 - (clamp(score, -100, 100) + 100) / 200);
  return [GX + radius * Math.cos(a), GY - radius * Math.sin(a)];
}

function buildNps(q, page) {
  const { T, fmt } = page;
  const node = el('div', 'st-vis st-nps');
  const g = svg('svg', { viewBox: '-34 -26 268 158', class: 'st-gauge', role: 'img' });
  const arc = `M${GX - GR} ${GY} A${GR} ${GR} 0 0 1 ${GX + GR} ${GY}`;
  g.append(svg('path', { d: arc, class: 'st-g-track', pathLength: 200 }));
  const val = svg('path', { d: arc, class: 'st-g-val', pathLength: 200 });
  g.append(val);
  g.append(svg('line', { x1: GX, x2: GX, y1: GY - GR - 14, y2: GY - GR + 14, class: 'st-g-zero' }));
  g.append(svg('text', { x: GX - GR, y: GY + 26, class: 'st-g-tick' }, fmt.number(-100, 0, true)));
  g.append(svg('text', { x: GX + GR, y: GY + 26, class: 'st-g-tick' }, fmt.number(100, 0, true)));
  const score = svg('text', { x: GX, y: GY - 8, class: 'st-g-score' }, '–');
  g.append(score);
  g.append(svg('text', { x: GX, y: GY + 18, class: 'st-g-name' }, T[q.kind]));
  const mark = svg('g', { class: 'st-g-mark' });
  const markLine = svg('line', {});
  const markText = svg('text', { class: 'st-g-mtext' });
  mark.append(markLine, markText);
  g.append(mark);

  const bar = el('div', 'st-npsbar');
  const legend = el('div', 'st-npskey');
  const groups = ['detractors', 'passives', 'promoters'].map((name) => {
    const seg = el('span', `st-seg st-seg-${name}`);
    bar.append(seg);
    const key = el('p', `st-npsk st-npsk-${name}`);
    const keyPct = el('b', '', '0%');
    key.append(el('span', '', T[name] || name), keyPct);
    legend.append(key);
    return { name, seg, keyPct };
  });
  node.append(g, bar, legend);

  function paint(r, rs) {
    const s = r.summary || {};
    const sc = isNum(s.score) ? s.score : null;
    score.textContent = sc == null ? '–' : fmt.number(sc, 0, true);
    g.setAttribute('aria-label', `${T[q.kind]} ${score.textContent}`);
    const v = sc == null ? 0 : clamp(sc, -100, 100);
    val.style.strokeDasharray = `${Math.abs(v)} 400`;
    val.style.strokeDashoffset = String(-(100 + Math.min(0, v)));
    val.classList.toggle('st-g-neg', v < 0);
    for (const grp of groups) {
      const share = isNum(s[grp.name]) ? s[grp.name] : 0;
      grp.seg.style.flexGrow = String(share);
      grp.keyPct.textContent = share + '%';
    }
    bar.classList.toggle('st-empty', !r.total);
    const on = !!rs && rs.metric === 'nps' && isNum(rs.measured);
    mark.classList.toggle('st-on', on);
    if (!on) return;
    const m = clamp(rs.measured, -100, 100);
    const [ax, ay] = gaugePoint(m, GR - 20);
    const [bx, by] = gaugePoint(m, GR + 18);
    const [tx, ty] = gaugePoint(m, GR + 26);
    markLine.setAttribute('x1', ax);
    markLine.setAttribute('y1', ay);
    markLine.setAttribute('x2', bx);
    markLine.setAttribute('y2', by);
    markText.setAttribute('x', tx);
    markText.setAttribute('y', ty + 4);
    markText.setAttribute('text-anchor', m < -12 ? 'end' : m > 12 ? 'start' : 'middle');
    markText.textContent = fmt.number(rs.measured, 0, true); // the source is named in the panel beside
  }
  return { node, paint };
}

// By segment: each group's score over its own detractors | passives | promoters.
function npsSegments(q, page, r) {
  return segmentCards(q, page, r, (box) => {
    const show = figure(box);
    const bar = el('div', 'st-npsbar st-sg-npsbar');
    const segs = ['detractors', 'passives', 'promoters'].map((name) => {
      const seg = el('span', `st-seg st-seg-${name}`);
      bar.append(seg);
      return [name, seg];
    });
    box.append(bar);
    return (g) => {
      const s = g.summary || {};
      show(isNum(s.score) ? page.fmt.number(s.score, 0, true) : '–');
      for (const [name, seg] of segs) seg.style.flexGrow = String(isNum(s[name]) ? s[name] : 0);
    };
  });
}

export default { build: buildNps, segments: npsSegments };
