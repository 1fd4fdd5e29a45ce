import { el } from '../../dom.js';
import { rows, sendButton } from '../../phone-kit.js';

// A few words typed; the results are the room's most given words.
export default {
  keepsRejected: true, // a refused text stays in the field to be fixed
  toSend: (page) => (page.draft == null ? null : page.draft.trim() || null),
  build(page, q, box) {
    const max = (q.text && q.text.max_length) || 40;
    const form = el('form', 'zp-form');
    const input = el('input', 'zp-text zp-in', null, {
      maxlength: max,
      autocomplete: 'off',
      enterkeyhint: 'send',
      'data-k': 'text',
      'aria-labelledby': 'zp-prompt',
      'aria-describedby': 'zp-count',
    });
    input.value = page.draft ?? '';
    const count = el('p', 'zp-count zp-in', null, { id: 'zp-count' });
    const yours = el('p', 'zp-you');
    input.addEventListener('input', () => page.edit(input.value));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      page.view.send.click(); // does nothing while disabled
    });
    form.append(input, count, sendButton(page, page.T.send), yours);
    box.append(form);
    page.view.sync = (open) => {
      if (page.draft == null) input.value = '';
      input.disabled = !open;
      input.setAttribute('aria-invalid', !!page.note);
      count.textContent = `${input.value.length} / ${max}`;
      const c = page.counted[q.id];
      yours.textContent = c == null ? '' : page.t('yourAnswer', { text: c });
    };
  },
  paint(page, q, r, sum, my) {
    const words = (sum.words || []).slice(0, 10);
    const most = words.length ? words[0].count : 1;
    const own = new Set(String(my ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u));
    const isOwn = (w) => own.has(w.word.toLowerCase()) || own.has(String(w.key).toLowerCase()); // key: "k**" unmasked
    return [rows(words.map((w) => ({ label: w.word, value: page.fmt.count(w.count), p: w.count / most, mine: isOwn(w) })))];
  },
};
