import { $, el } from './dom.js';
import { calm, fitter } from './stage-kit.js';

// The stage's Q&A view (qa_board, docs/protocol.md "Server to stage"): the item "on stage now"
// large and whole, the top items by votes (counts count up, rows glide to their new places), how
// many are open. It takes the poll's place while the host shows it; both are painted whether
// shown or not, so the switch either way is instant.

const TWEEN = 600; // ms, as the bars' transitions
// Rows at most: with an item on stage the list has the height it leaves, without it the screen.
const MOST_BESIDE_PINNED = 4;
const MOST_ALONE = 7;

export function stageQa(page, root) {
  const { T, fmt } = page;
  const view = $('zp-qa');
  const openCount = $('zp-qa-open');
  const openLabel = $('zp-qa-open-label');
  const now = $('zp-qa-now');
  const said = $('zp-qa-said');
  const by = $('zp-qa-by');
  const list = $('zp-qa-list');
  const empty = $('zp-qa-empty');
  const rows = new Map(); // item id -> row
  const nowFit = fitter(now);
  new ResizeObserver(cut).observe(list);
  let version = -1;
  let pinnedId = null;
  let pinnedText = '';

  const votes = (n) => fmt.count(n) + ' ' + (n === 1 ? T.qaVote : T.qaVotes);
  const moving = () => root.classList.contains('st-is-qa') && !calm.matches;

  function board(m) {
    if (m.version < version) return; // coalesced per process: another's may come late
    version = m.version;
    root.classList.toggle('st-is-qa', !!m.shown);
    const open = m.open || 0;
    openCount.textContent = fmt.count(open);
    openLabel.textContent = open === 1 ? T.qaOpenOne : T.qaOpenMany;
    const pinned = m.pinned || null;
    const top = (m.top || []).slice(0, pinned ? MOST_BESIDE_PINNED : MOST_ALONE);
    view.classList.toggle('st-qa-solo', !!pinned && !top.length);
    empty.hidden = !!(pinned || top.length);
    list.hidden = !top.length;
    paintPinned(pinned);
    paintList(top);
  }

  function paintPinned(item) {
    now.hidden = !item;
    if (!item) {
      pinnedId = null;
      return;
    }
    by.textContent = [item.name, votes(item.votes)].filter(Boolean).join(' · ');
    if (item.id === pinnedId && item.text === pinnedText) return;
    const arriving = item.id !== pinnedId;
    pinnedId = item.id;
    pinnedText = item.text;
    said.textContent = item.text;
    // Its type steps down by length; the fitting shrinks it further until the whole item shows.
    said.classList.toggle('st-qa-short', item.text.length <= 60);
    said.classList.toggle('st-qa-long', item.text.length > 160);
    nowFit.run();
    if (arriving && moving()) {
      now.animate([{ opacity: 0, transform: 'scale(0.97)' }, { opacity: 1, transform: 'none' }], { duration: 500, easing: 'ease-out' });
    }
  }

  // FLIP: each kept row's place is taken before the list is reordered, and the row is animated
  // from there to its new place; new rows fade in, rows that left the top go at once.
  function paintList(items) {
    const animate = moving();
    const before = new Map();
    if (animate) for (const [id, row] of rows) before.set(id, row.li.getBoundingClientRect().top);
    const order = [];
    for (const item of items) {
      let row = rows.get(item.id);
      const fresh = !row;
      if (fresh) rows.set(item.id, (row = makeRow()));
      if (row.text.textContent !== item.text) row.text.textContent = item.text;
      row.name.textContent = item.name;
      row.name.hidden = !item.name;
      row.count.set(item.votes, animate && !fresh);
      row.unit.textContent = item.votes === 1 ? T.qaVote : T.qaVotes;
      order.push([item.id, row, fresh]);
    }
    const kept = new Set(items.map((item) => item.id));
    for (const id of [...rows.keys()]) if (!kept.has(id)) rows.delete(id);
    list.style.setProperty('--n', Math.max(3, items.length));
    // Most boards move no one (a vote that changes no place): then the rows stay where they are.
    const same = order.length === list.children.length && order.every(([, row], i) => list.children[i] === row.li);
    if (!same) list.replaceChildren(...order.map(([, row]) => row.li));
    cut();
    if (!animate) return;
    for (const [id, row, fresh] of order) {
      if (fresh) {
        row.li.animate([{ opacity: 0 }, { opacity: 1 }], { duration: 500, easing: 'ease' });
        continue;
      }
      const dy = before.get(id) - row.li.getBoundingClientRect().top;
      if (Math.abs(dy) > 1) {
        row.li.animate([{ transform: `translateY(${dy}px)` }, { transform: 'none' }], { duration: TWEEN, easing: 'ease' });
      }
    }
  }

  function makeRow() {
    const li = el('li', 'st-qa-row');
    const box = el('p', 'st-qa-count');
    const num = el('b', 'st-qa-num', '0');
    const unit = el('span', 'st-qa-unit');
    box.append(num, unit);
    const body = el('p', 'st-qa-body');
    const text = el('span', 'st-qa-text');
    const name = el('span', 'st-qa-name');
    body.append(text, name);
    li.append(box, body);
    return { li, text, name, unit, count: counter(num) };
  }

  // A number that counts to its new value rather than jumping.
  function counter(node) {
    let value = 0;
    let frame = 0;
    return {
      set(target, animate) {
        cancelAnimationFrame(frame);
        if (!animate || target === value) {
          value = target;
          node.textContent = fmt.count(target);
          return;
        }
        const from = value;
        const start = performance.now();
        const step = (t) => {
          const k = Math.min(1, (t - start) / TWEEN);
          value = Math.round(from + (target - from) * (1 - (1 - k) ** 3));
          node.textContent = fmt.count(value);
          if (k < 1) frame = requestAnimationFrame(step);
        };
        frame = requestAnimationFrame(step);
      },
    };
  }

  // The rows' type fits the list's height (CSS, by their number); a row that still would not fit
  // whole (a tall name, a tiny screen) is left out rather than shown cut in half.
  function cut() {
    const limit = list.clientHeight + 1;
    for (const li of list.children) li.classList.toggle('st-qa-cut', li.offsetTop + li.offsetHeight > limit);
  }

  return { board };
}
