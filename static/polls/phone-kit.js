import { el } from './dom.js';

// What the phone's kind renderers share: the widgets, the options list (also what a kind
// this page has no module for is drawn as) and the NPS groups.

export const GROUPS = ['promoters', 'passives', 'detractors'];

// The group an NPS answer falls in; promoters from 9 (eNPS: 8).
export function group(v, promoterFrom = 9) {
  if (typeof v !== 'number') return null;
  return GROUPS[v >= promoterFrom ? 0 : v >= promoterFrom - 2 ? 1 : 2];
}

export function sendButton(page, text) {
  const b = (page.view.send = el('button', 'zp-btn zp-primary zp-in', text));
  b.type = 'button';
  b.dataset.k = 'send';
  b.addEventListener('click', () => page.submit(page.toSend()));
  return b;
}

export function ends(low, high) {
  const p = el('p', 'zp-ends');
  if (low || high) p.append(el('span', '', low), el('span', '', high));
  return p;
}

export function range(key, name) {
  const r = el('input', 'zp-range');
  r.type = 'range';
  r.min = 0;
  r.max = 100;
  r.step = 1;
  r.dataset.k = key;
  if (name) r.setAttribute('aria-label', name);
  else r.setAttribute('aria-labelledby', 'zp-prompt');
  return r;
}

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

export function buildOptions(page, q, box) {
  const { view } = page;
  const list = el('div', 'zp-opts');
  for (const o of q.options) {
    const b = el('button', 'zp-opt');
    b.type = 'button';
    const fill = el('span', 'zp-fill');
    b.append(fill, el('span', 'zp-label', o.label));
    if (q.show_results) {
      const key = String(o.id);
      const pct = el('span', 'zp-pct');
      const meas = el('span', 'zp-meas');
      b.append(pct, meas);
      view.fills.set(key, fill);
      view.pcts.set(key, pct);
      view.meas.set(o.id, meas);
    }
    b.addEventListener('click', () => page.tap(o.id));
    view.buttons.set(o.id, b);
    list.append(b);
  }
  // A profile question: "rather not say" is an answer too (0, in no segment).
  if (q.segment) {
    const b = el('button', 'zp-opt zp-rather');
    b.type = 'button';
    b.append(el('span', 'zp-label', page.T.rather));
    b.addEventListener('click', () => page.tap(0));
    view.buttons.set(0, b);
    list.append(b);
  }
  box.append(list);
}

export const options = { build: buildOptions };
