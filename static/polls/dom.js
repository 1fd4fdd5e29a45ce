// The page's building blocks: everything shown is made with createElement(NS) and textContent,
// so no markup from the server ever reaches a page (CSP: no inline anything).

export const $ = (id) => document.getElementById(id);

// attrs: attributes as given (role, aria-*, type, ...).
export function el(tag, cls, text, attrs) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

// A button that does not submit a form: `click` runs on a tap.
export function button(cls, text, click, attrs) {
  const b = el('button', cls, text, { type: 'button', ...attrs });
  b.onclick = click;
  return b;
}

export function svg(tag, attrs = {}, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text != null) e.textContent = text;
  return e;
}

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
