import { el } from '../../dom.js';

// The most given word, then the next few (the list below the view moderates them).
export default {
  build(q, view) {
    view.head.classList.add('hs-head-text');
    view.headLabel.textContent = '';
    view.top = el('p', 'hs-top');
    return [view.headNode, view.top];
  },
  paint(q, s, view, page) {
    const { T, fmt } = page;
    const words = Array.isArray(s.words) ? s.words : [];
    view.head.textContent = words.length ? words[0].word : '–';
    view.headLabel.textContent = words.length ? fmt.count(words[0].count) + '×' : T.noWords;
    view.top.textContent = words
      .slice(1, 8)
      .map((w) => `${w.word} ${fmt.count(w.count)}`)
      .join(' · ');
  },
};
