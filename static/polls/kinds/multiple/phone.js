import { buildOptions, sendButton } from '../../phone-kit.js';

const sorted = (v) => [...v].sort((a, b) => a - b);

function limits(q) {
  const c = q.choices || {};
  return { min: c.min ?? 1, max: c.max ?? q.options.length };
}

// Several options make one answer: taps edit a draft (a Set of ids), the button sends it.
export default {
  hint: () => '',
  build(page, q, box) {
    buildOptions(page, q, box);
    box.append(sendButton(page, page.T.send));
  },
  canon: sorted, // the order of the taps does not matter
  toSend: (page) => page.draft && sorted(page.draft),
  tap(page, value) {
    page.draft = page.draft || new Set(page.mine() || []);
    if (!page.draft.delete(value)) page.draft.add(value);
    page.note = '';
    page.update();
  },
  chosen: (page, current) => page.draft || new Set(current || []),
  refresh(page, chosen) {
    const { min, max } = limits(page.question);
    const hint = page.view.hint;
    hint.textContent = page.t(min === max ? 'exactly' : min <= 1 ? 'upTo' : 'between', { n: max, min, max });
    hint.classList.toggle('zp-warn', chosen.size > max);
  },
  blocked(page, chosen) {
    const { min, max } = limits(page.question);
    return chosen.size < min || chosen.size > max;
  },
};
