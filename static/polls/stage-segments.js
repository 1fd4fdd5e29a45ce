import { clamp, el, isNum } from './dom.js';
import { fitter } from './stage-kit.js';

// The stage's results by segment (results.segments): what every kind's per-segment view shares.
// A kind's renderer says how one group looks (its `segments` member, in its own stage.js); this
// module lays the groups out, headed by the segment they are, their respondents and, once
// revealed, their own research. The whole room comes first, against the overall figure.
// (It imports stage-kit, never the other way: hashed names cannot resolve an import circle.)

// The groups as columns: the whole room, then the segments shown (then "other"). Each column
// carries its colour class and its research entry (the last comparison: the current figure).
export function columns(r, page) {
  const segs = r.segments || { groups: [] };
  const cmp = (list) => (page.question.revealed && Array.isArray(list) && list.length ? list[list.length - 1] : null);
  const all = { key: '', label: page.T.everyone, total: r.total || 0, counts: r.counts || {}, summary: r.summary || {}, c: cmp(r.comparison), cls: 'st-s-all' };
  return [all, ...segs.groups.map((g) => ({ ...g, c: cmp(g.comparison), cls: colour(page, g.key) }))];
}

// A segment keeps its colour all show long, also when another one folds into "other" on one
// question: colours go to segments in the order the screen first sees them.
function colour(page, key) {
  if (key === 'other') return 'st-s-other';
  const seen = page.segColours || (page.segColours = new Map());
  if (!seen.has(key)) seen.set(key, seen.size);
  return 'st-s' + (seen.get(key) % 6);
}

// Rebuild when the set of groups changes (a segment reaching k appears, "by segment" is switched).
export const layoutKey = (r) => (r && r.segments ? r.segments.question + ':' + r.segments.groups.map((g) => g.key).join(',') : '');

// A group's head: its colour, its label, its respondents ("40 responses").
function head(col, page, tag = 'div') {
  const h = el(tag, 'st-sg-head ' + col.cls);
  const n = el('span', 'st-sg-n');
  h.append(el('b', 'st-sg-label', col.label), n);
  return { node: h, paint: (total) => (n.textContent = `${page.fmt.count(total)} ${total === 1 ? page.T.response : page.T.responses}`) };
}

// The layer around a kind's per-segment view: which profile question splits the room, and the
// widest gap between two segments in the stage's language.
export function segmentLayer(inner, r, page) {
  const node = el('div', 'st-vis st-segs');
  const by = el('p', 'st-sg-by', page.T.bySegment.replace('{prompt}', r.segments.prompt || ''));
  const words = el('p', 'st-sg-words');
  node.append(by, words, inner.node);
  const fit = fitter(inner.node);
  let said = null;
  return {
    node,
    paint(res, rs) {
      const w = res.segments && res.segments.words;
      const text = w ? w[page.lang] || w.en || '' : '';
      if (text !== said) {
        said = text;
        words.textContent = text;
        words.hidden = !text;
        fit.run();
      }
      inner.paint(res, rs);
    },
    dispose() {
      fit.dispose();
      if (inner.dispose) inner.dispose();
    },
  };
}

// Grouped bars (single, multiple and any kind with options): a row per option, in it a bar per
// group, aligned in columns under the groups' heads; a group's research share marked on its bar.
// The bars run across their cells: a row is wide and low, and the share is read as a number.
function researchShares(c) {
  const m = new Map();
  if (c && c.metric === 'shares' && Array.isArray(c.options)) for (const o of c.options) if (isNum(o.measured)) m.set(String(o.id), o.measured);
  return m;
}

export function segmentBars(q, page, r) {
  const { fmt } = page;
  const cols = columns(r, page);
  const node = el('div', 'st-sgrid');
  node.style.setProperty('--g', cols.length);
  node.style.setProperty('--n', q.options.length);
  node.append(el('span', ''));
  const heads = cols.map((col) => {
    const h = head(col, page);
    node.append(h.node);
    return h;
  });
  const cells = [];
  for (const o of q.options) {
    node.append(el('span', 'st-sg-opt', o.label));
    for (const col of cols) {
      const cell = el('div', 'st-sc ' + col.cls);
      const bar = el('span', 'st-sc-bar');
      const pct = el('b', 'st-sc-pct', '0%');
      const tick = el('span', 'st-sc-tick');
      bar.append(el('span', 'st-sc-fill'), tick);
      const rpct = el('span', 'st-sc-r');
      cell.append(pct, rpct, bar);
      node.append(cell);
      cells.push({ key: String(o.id), col: col.key, pct, bar, tick, rpct });
    }
  }
  function paint(res) {
    const now = new Map(columns(res, page).map((c) => [c.key, c]));
    heads.forEach((h, i) => h.paint((now.get(cols[i].key) || {}).total || 0));
    for (const cell of cells) {
      const g = now.get(cell.col) || {};
      const p = (g.summary && g.summary.percent) || {};
      const counts = g.counts || {};
      const v = p[cell.key] ?? (g.total ? Math.round((100 * (counts[cell.key] || 0)) / g.total) : 0);
      cell.pct.textContent = v + '%';
      cell.bar.style.setProperty('--p', clamp(v / 100, 0, 1));
      const m = researchShares(g.c).get(cell.key);
      // The research line keeps its room before the reveal: revealing moves nothing.
      cell.tick.hidden = !isNum(m);
      cell.rpct.textContent = isNum(m) ? fmt.percent(m) : '';
      if (isNum(m)) cell.tick.style.setProperty('--r', clamp(m / 100, 0, 1));
    }
  }
  return { node, paint };
}

// One card per group (the kinds summed up by one figure, and the lists): the kind's `fill(box)`
// builds the card's picture and returns its paint(group), called with the group's counts and
// summary (and its research entry `c`). The card adds the research figure under it.
export function segmentCards(q, page, r, fill) {
  const cols = columns(r, page);
  const node = el('div', 'st-scards');
  node.style.setProperty('--g', cols.length);
  const cards = cols.map((col) => {
    const card = el('section', 'st-scard ' + col.cls);
    const h = head(col, page);
    const box = el('div', 'st-scard-body');
    const research = el('p', 'st-scard-r');
    card.append(h.node, box, research);
    node.append(card);
    return { key: col.key, h, research, paint: fill(box, col) };
  });
  function paint(res) {
    const now = new Map(columns(res, page).map((c) => [c.key, c]));
    for (const card of cards) {
      const g = now.get(card.key) || { total: 0, counts: {}, summary: {} };
      card.h.paint(g.total || 0);
      card.paint(g);
      // Kept in place before the reveal (empty): revealing moves nothing.
      const c = g.c;
      const shown = c && c.metric !== 'shares' && isNum(c.measured);
      card.research.replaceChildren(...(shown ? [el('span', '', page.T.research), el('b', '', page.fmt.metric(c.metric, c.measured, q))] : []));
    }
  }
  return { node, paint };
}

// A big figure for a card, its type fitted to the card's width by its length; `rest` follows it
// at half the size (a split's "/ 47").
export function figure(box) {
  const b = el('b', 'st-sf', '–');
  const small = el('small', '');
  box.append(b);
  return (text, rest = '') => {
    b.firstChild.textContent = text;
    small.textContent = rest;
    if (rest) b.append(small);
    else small.remove();
    b.style.setProperty('--len', Math.max(3, text.length + rest.length / 2));
  };
}

// A track with the group's value filled in (0..1) and its research marked, for means and splits.
export function track(box) {
  const t = el('span', 'st-st');
  const f = el('span', 'st-st-fill');
  const m = el('span', 'st-st-mark');
  t.append(f, m);
  box.append(t);
  return (p, mark) => {
    f.style.setProperty('--p', isNum(p) ? clamp(p, 0, 1) : 0);
    m.hidden = !isNum(mark);
    if (isNum(mark)) m.style.setProperty('--p', clamp(mark, 0, 1));
  };
}

// A short ranked list for a card (ranking's top items, the cloud's top words).
export function topList(box, n) {
  const ol = el('ol', 'st-sl');
  box.append(ol);
  return (items) => {
    ol.replaceChildren(
      ...items.slice(0, n).map(([label, value]) => {
        const li = el('li', '');
        li.append(el('span', 'st-sl-l', label), el('b', 'st-sl-v', value));
        return li;
      }),
    );
  };
}
