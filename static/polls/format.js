// Numbers for people in the page's language (7,5 in Dutch): the browser's twin of
// benchmarks/numbers.py, held to the same strings by tests/test_browser_format.py. Rounding
// is half away from zero on the number as written (7.25 -> 7,3; an NPS of -12.5 -> -13),
// never on the float's binary value (Intl alone would make 1.15 -> 1,1).

const PERCENT = ['split', 'percentage', 'shares'];
const MEANS = ['mean', 'ces'];

// v rounded half up to `places` decimals, as the nearest float to that decimal.
export function roundHalfUp(v, places = 0) {
  const a = Math.abs(v);
  const s = String(a);
  if (s.includes('e')) return Math.sign(v) * Number(a.toFixed(places)); // far from any half
  const [whole, frac = ''] = s.split('.');
  let n = Number(whole + frac.slice(0, places).padEnd(places, '0'));
  if (frac.length > places && frac[places] >= '5') n += 1;
  return (Math.sign(v) * n) / 10 ** places;
}

export const places = (v) => (Number.isInteger(v) ? 0 : 1);

export function formatter(lang) {
  const fixed = [0, 1, 2].map((p) =>
    new Intl.NumberFormat(lang, { minimumFractionDigits: p, maximumFractionDigits: p, useGrouping: false }),
  );
  const counts = new Intl.NumberFormat(lang);
  // Python's numbers.number: never "-0", "+" before a positive one when signed.
  function number(v, p = 0, signed = false) {
    const r = roundHalfUp(v, p) || 0;
    const text = fixed[p].format(r);
    return signed && r > 0 ? '+' + text : text;
  }
  // numbers.show_metric; the pages write a missing figure as a dash.
  function metric(m, v, spec = {}) {
    if (v == null) return '–';
    const p = places(v);
    if (m === 'split' && spec.split && spec.split.b) return `${number(v, p)} / ${number(100 - v, p)}`;
    if (PERCENT.includes(m)) return number(v, p) + '%';
    if (m === 'nps') return number(v, 0, true);
    return number(v, 1);
  }
  // numbers.show_difference
  const difference = (m, d) => (d == null ? '' : number(d, MEANS.includes(m) ? 1 : 0, true));
  // At most one decimal: 7,5 and 8 (positions, shares and coordinates in the pages' pictures).
  const short = (v) => {
    const r = roundHalfUp(v, 1);
    return number(r, places(r));
  };
  return {
    number,
    metric,
    difference,
    short,
    percent: (v) => (v == null ? '–' : short(v) + '%'),
    count: (n) => counts.format(n), // grouped: 1.234 responses
  };
}
