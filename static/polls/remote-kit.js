import { el } from './dom.js';

// The remote's live mini view of options: a bar, the share and the count per option (also what
// a kind this page has no module for is drawn as).
export const options = {
  build(q, view) {
    const rows = [];
    for (const o of q.options || []) {
      const row = el('div', 'hs-row');
      const p = el('b', 'hs-pct');
      const bar = el('span', 'hs-bar');
      const fill = el('span', 'hs-fill');
      bar.append(fill);
      row.append(el('span', 'hs-label', o.label), p, bar);
      rows.push(row);
      view.fills.set(String(o.id), fill);
      view.pcts.set(String(o.id), p);
    }
    return rows;
  },
};

// The list of items under the headline, for the kinds whose results are per item.
export function itemList(q, view) {
  view.labels = new Map((q.options || []).map((o) => [String(o.id), o.label]));
  view.head.classList.add('hs-head-text');
  view.list = el('ol', 'hs-ranklist');
  return view.list;
}
