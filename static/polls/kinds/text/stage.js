import { el, isNum } from '../../dom.js';
import { calm, fitScale } from '../../stage-kit.js';
import { segmentCards, topList } from '../../stage-segments.js';

// A word cloud laid out by flex-wrap, the most given word in the middle.
// summary.words, with words that read the same (two masked words, "f***") counted together.
function wordCounts(r) {
  const sums = new Map();
  for (const w of r.summary && Array.isArray(r.summary.words) ? r.summary.words : []) {
    if (w && typeof w.word === 'string' && w.word && isNum(w.count)) sums.set(w.word, (sums.get(w.word) || 0) + w.count);
  }
  return [...sums].map(([word, n]) => ({ word, count: n })).slice(0, 60);
}

const CLOUD_COLOURS = 6;
function hue(word) {
  let h = 0;
  for (let i = 0; i < word.length; i++) h = (h * 31 + word.charCodeAt(i)) >>> 0;
  return h % CLOUD_COLOURS;
}

function buildCloud(q, page) {
  const { T } = page;
  const node = el('div', 'st-vis st-cloudbox');
  const cloud = el('div', 'st-cloud');
  const waiting = el('p', 'st-cloud-wait', T.noWords);
  node.append(cloud, waiting);
  const words = new Map(); // word -> element
  let order = [];

  function fit() {
    // Every word shrinks together until the cloud fits its box.
    if (!cloud.isConnected || !cloud.clientHeight) return;
    fitScale(cloud, () => cloud.scrollHeight > cloud.clientHeight + 1 || cloud.scrollWidth > cloud.clientWidth + 1);
  }
  const ro = new ResizeObserver(() => fit());
  ro.observe(cloud);

  function paint(r) {
    const list = wordCounts(r);
    waiting.hidden = list.length > 0;
    list.sort((a, b) => b.count - a.count || a.word.localeCompare(b.word));
    const hi = list.length ? Math.sqrt(list[0].count) : 1;
    const lo = list.length ? Math.sqrt(list[list.length - 1].count) : 1;
    const seen = new Set();
    const arranged = [];
    list.forEach((w, i) => {
      seen.add(w.word);
      let e = words.get(w.word);
      if (!e) {
        e = el('span', `st-word st-c${hue(w.word)}`, w.word);
        e.style.setProperty('--len', Math.max(3, w.word.length));
        if (!calm.matches) {
          e.classList.add('st-new');
          e.addEventListener('animationend', () => e.classList.remove('st-new'), { once: true });
        }
        words.set(w.word, e);
      }
      const t = hi === lo ? 0.55 : (Math.sqrt(w.count) - lo) / (hi - lo);
      e.style.setProperty('--s', (2 + 5 * t).toFixed(2));
      e.classList.toggle('st-top', i < 3);
      // Centre-out: the most frequent word in the middle, the rest alternating either side.
      if (i % 2) arranged.unshift(e);
      else arranged.push(e);
    });
    for (const [w, e] of words) {
      if (!seen.has(w)) {
        e.remove();
        words.delete(w);
      }
    }
    if (arranged.length !== order.length || arranged.some((e, i) => e !== order[i])) {
      cloud.replaceChildren(...arranged);
      order = arranged;
    }
    fit();
  }
  return { node, paint, dispose: () => ro.disconnect() };
}

// By segment: each group's five most given words.
function cloudSegments(q, page, r) {
  return segmentCards(q, page, r, (box) => {
    const show = topList(box, 5);
    return (g) => {
      const list = wordCounts(g).sort((a, b) => b.count - a.count || a.word.localeCompare(b.word));
      show(list.map((w) => [w.word, page.fmt.count(w.count)]));
    };
  });
}

export default { build: buildCloud, segments: cloudSegments };
