import { button, el } from '../../dom.js';
import { ends, you } from '../../phone-kit.js';

// A row (or two) of numbered buttons; with the results, a column chart of the answers.
export function buildScale(page, q, box, withChart) {
  const { view } = page;
  const s = q.scale || { min: 0, max: 10 };
  const { min, max } = s;
  const n = max - min + 1;
  const cols = n <= 6 ? n : Math.ceil(n / 2);
  const grid = el('div', 'zp-scale');
  grid.style.setProperty('--cols', cols);
  const chart = el('div', 'zp-chart', null, { role: 'img' });
  chart.style.setProperty('--start', min - 1); // CSS counters number the columns
  const e = ends(s.min_label, s.max_label);
  const [lo, hi] = e.children;
  for (let v = min; v <= max; v++) {
    const b = button('zp-num', String(v), () => page.tap(v));
    // An odd count ends on the right: the second row starts one column in.
    if (n > 6 && n % 2 && v === min + cols) b.style.gridColumnStart = 2;
    const end = v === min ? lo : v === max ? hi : null;
    if (end) b.setAttribute('aria-describedby', (end.id = 'zp-end' + v));
    view.buttons.set(v, b);
    grid.append(b);
    const col = el('span', 'zp-col');
    const fill = el('span', 'zp-fill');
    col.append(fill);
    chart.append(col);
    view.fills.set(String(v), fill);
  }
  box.append(grid, e);
  if (q.show_results && withChart) {
    view.chart = chart;
    view.mean = el('p', 'zp-mean');
    box.append(chart, view.mean);
  }
}

export default {
  numeric: true, // one number, set beside a measured one after the reveal
  build: (page, q, box) => buildScale(page, q, box, true),
  paint: (page, q, r, sum, my) => (my != null ? [you(page, my)] : []),
};
