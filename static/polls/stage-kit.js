import { clamp, el, isNum } from './dom.js';

// What the stage's kind renderers share: fitting type to its box, the options' bars (also what
// a kind this page has no module for is drawn as) and an empty view.

export const calm = matchMedia('(prefers-reduced-motion: reduce)');

// The largest type scale (the CSS variable --k on box, 0.3..1) at which box's content fits:
// a bisection, so the same content in the same box always gets the same picture.
export function fitScale(box, overflows) {
  const set = (k) => box.style.setProperty('--k', k.toFixed(3));
  set(1);
  if (!overflows()) return;
  let lo = 0.3;
  let hi = 1;
  for (let i = 0; i < 8; i++) {
    const mid = (lo + hi) / 2;
    set(mid);
    if (overflows()) hi = mid;
    else lo = mid;
  }
  set(lo);
}

// Keeps box's type fitted to its box, also when the box resizes (reveal, window). A box whose
// size follows its own text (the prompt) is refitted when `watched`, whose size does not, resizes.
export function fitter(box, watched = box) {
  const run = () => {
    if (!box.isConnected || !box.clientHeight) return;
    fitScale(box, () => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1);
  };
  const ro = new ResizeObserver(run);
  ro.observe(watched);
  return { run, dispose: () => ro.disconnect() };
}

// Each option's measured share (the comparison's, else the figure's own list).
function measuredShares(q, rs) {
  const m = new Map();
  if (rs.c && Array.isArray(rs.c.options)) {
    for (const o of rs.c.options) if (isNum(o.measured)) m.set(String(o.id), o.measured);
  } else if (rs.f && Array.isArray(rs.f.shares)) {
    q.options.forEach((o, i) => isNum(rs.f.shares[i]) && m.set(String(o.id), rs.f.shares[i]));
  }
  return m;
}

// Bars, with the measured share beside each once revealed.
export function buildOptions(q, page) {
  const { T, fmt } = page;
  const node = el('div', 'st-vis st-bars');
  const legend = el('p', 'st-legend');
  const resKey = el('span', 'st-key st-key-res');
  legend.append(el('span', 'st-key st-key-room', T.room), resKey);
  legend.hidden = true;
  const list = el('ol', 'st-opts');
  list.style.setProperty('--n', q.options.length);
  list.classList.toggle('st-many', q.options.length > 4);
  const rows = new Map();
  for (const o of q.options) {
    const track = el('span', 'st-track');
    const fill = el('span', 'st-fill');
    track.append(fill);
    const rtrack = el('span', 'st-rtrack');
    const rfill = el('span', 'st-fill st-rfill');
    rtrack.append(rfill);
    const row = {
      fill,
      rfill,
      pct: el('b', 'st-pct', '0%'),
      cnt: el('span', 'st-cnt', '0'),
      rpct: el('span', 'st-rpct'),
    };
    const li = el('li', 'st-opt');
    li.append(el('span', 'st-label', o.label), track, row.pct, row.cnt, rtrack, row.rpct);
    list.append(li);
    rows.set(String(o.id), row);
  }
  node.append(legend, list);
  const fit = fitter(list);
  let was = false;

  function paint(r, rs) {
    const p = (r.summary && r.summary.percent) || {};
    const counts = r.counts || {};
    const total = r.total || 0;
    const share = (k) => p[k] ?? (total ? Math.round((100 * (counts[k] || 0)) / total) : 0);
    const m = rs && rs.metric === 'shares' ? measuredShares(q, rs) : null;
    const on = !!(m && m.size);
    list.classList.toggle('st-cmp', on);
    legend.hidden = !on;
    if (on !== was) {
      was = on;
      fit.run();
    }
    // Short, so the key stays on one line: the study is cited under the verdict.
    if (on) resKey.textContent = [T.research, rs.year].filter((x) => x !== '' && x != null).join(' ');
    for (const [k, row] of rows) {
      row.fill.style.setProperty('--p', share(k) / 100);
      row.pct.textContent = share(k) + '%';
      row.cnt.textContent = fmt.count(counts[k] || 0);
      if (on) {
        const v = m.get(k);
        row.rfill.style.setProperty('--p', isNum(v) ? clamp(v / 100, 0, 1) : 0);
        row.rpct.textContent = isNum(v) ? fmt.percent(v) : '–';
      }
    }
  }
  return { node, paint, dispose: fit.dispose };
}

export const buildNothing = () => ({ node: el('div', 'st-vis'), paint() {} });

// A kind with options and nothing else to show (single, multiple, and the unknown).
export const options = { build: buildOptions };
