import { button, el } from './dom.js';

// What the phone's kind renderers share: the widgets, the options list (also what a kind
// this page has no module for is drawn as) and the NPS groups.

export const GROUPS = ['promoters', 'passives', 'detractors'];

// The group an NPS answer falls in; promoters from 9 (eNPS: 8).
export function group(v, promoterFrom = 9) {
  if (typeof v !== 'number') return null;
  return GROUPS[v >= promoterFrom ? 0 : v >= promoterFrom - 2 ? 1 : 2];
}

export const sendButton = (page, text) =>
  (page.view.send = button('zp-btn zp-primary zp-in', text, () => page.submit(page.toSend()), { 'data-k': 'send' }));

export function ends(low, high) {
  const p = el('p', 'zp-ends');
  if (low || high) p.append(el('span', '', low), el('span', '', high));
  return p;
}

export const range = (key, name) =>
  el('input', 'zp-range', null, { type: 'range', 'data-k': key, ...(name ? { 'aria-label': name } : { 'aria-labelledby': 'zp-prompt' }) });

export function setRange(r, v, open) {
  if (+r.value !== v) r.value = v;
  r.style.setProperty('--v', v + '%');
  r.disabled = !open;
}

// Result rows: [{label, value, p (0..1), mine, sub}]
export function rows(items) {
  const list = el('ol', 'zp-list');
  for (const r of items) {
    const li = el('li', 'zp-row' + (r.mine ? ' zp-mine' : ''));
    const fill = el('span', 'zp-fill');
    fill.style.setProperty('--p', r.p || 0);
    li.append(fill, el('span', 'zp-label', r.label), el('span', 'zp-pct', r.value), el('span', 'zp-meas', r.sub));
    list.append(li);
  }
  return list;
}

// "You: 7" under the room's result.
export const you = (page, v) => el('p', 'zp-you', page.t('you', { v }));

// One button per option; tap: what a tap does with the option's id (the page's own by default;
// a profile question asked before the poll has no view of its own).
export function buildOptions(page, q, box, tap = page.tap) {
  const view = page.view || { buttons: new Map() };
  const list = el('div', 'zp-opts');
  // A profile question: "rather not say" is an answer too (0, in no segment).
  for (const o of q.segment ? [...q.options, { id: 0, label: page.T.rather }] : q.options) {
    const b = button(o.id ? 'zp-opt' : 'zp-opt zp-rather', null, () => tap(o.id));
    const fill = el('span', 'zp-fill');
    b.append(fill, el('span', 'zp-label', o.label));
    if (q.show_results && o.id) {
      const key = String(o.id);
      const pct = el('span', 'zp-pct');
      const meas = el('span', 'zp-meas');
      b.append(pct, meas);
      view.fills.set(key, fill);
      view.pcts.set(key, pct);
      view.meas.set(o.id, meas);
    }
    view.buttons.set(o.id, b);
    list.append(b);
  }
  box.append(list);
}

export const options = { build: buildOptions };
