import { $, el } from './dom.js';

// The audience Q&A beside the poll (docs/protocol.md "Audience Q&A"): the Poll and Questions
// tabs, the ask form (templates/polls/phone.html) and the list with its votes. The server's
// list is the truth. What this phone sent waits in the page's outbox beside its answers (an
// ask as 'q' + its id, a vote or unvote as 'v' + the item: the latest tap wins) until its
// qa_ack, resent with the same id after a reconnect or a reload: nothing asked is lost and
// nothing counts twice.

export function startQa(page, send) {
  const { T } = page;
  const [tabs, pollTab, qaTab, badge, pane, poll, box, left, who, name, note, list, none, go] = (
    'tabs tab-poll tab-qa qa-new qa app ask-text ask-left ask-who ask-name ask-note qa-list qa-none ask-send'
  )
    .split(' ')
    .map((id) => $('zp-' + id));
  const NAME_KEY = 'zp-qa-name'; // one name for every event on this phone
  let mode = 'off';
  let items = new Map(); // the visible items, and this phone's own that wait for a host
  let mine = new Set();
  let voted = new Set(); // the items the server counts this phone's vote on
  const seen = new Set(); // items the attendee has had in view: the badge counts the others
  let order = 'top';
  let showing = false;
  let frame = 0;
  name.value = page.load(NAME_KEY) || '';

  // The vote as shown: a tap on its way, else what the server counts.
  const on = (id) => (page.outbox['v' + id] ? page.outbox['v' + id].type === 'vote' : voted.has(id));
  const keep = (i) => (/^(visible|pending)$/.test(i.state) ? items.set(i.id, i) : items.delete(i.id));
  // Sendable as the server's rule has it (polls/qa.py): with some letter or digit.
  const typed = () => {
    left.textContent = page.t('qaLeft', { n: box.maxLength - box.value.length });
    go.disabled = !/[\p{L}\p{N}]/u.test(box.value);
  };

  function post(k, msg) {
    if (msg) page.outbox[k] = msg;
    else delete page.outbox[k];
    page.persist();
    if (msg) send(msg);
    draw();
    page.update(); // the status line: sending, offline
  }

  function show(qa) {
    showing = qa && mode !== 'off';
    pane.hidden = !showing;
    poll.hidden = showing;
    pollTab.setAttribute('aria-pressed', !showing);
    qaTab.setAttribute('aria-pressed', showing);
    if (!showing) pollTab.classList.remove('zp-new');
    scrollTo(0, 0);
    draw();
  }
  pollTab.onclick = () => show(false);
  qaTab.onclick = () => show(true);
  for (const b of $('zp-sort').children) {
    b.onclick = () => {
      order = b.dataset.sort;
      for (const o of b.parentNode.children) o.setAttribute('aria-pressed', o === b);
      draw();
    };
  }
  box.oninput = typed;
  typed();
  $('zp-ask').onsubmit = (e) => {
    e.preventDefault();
    const msg = { type: 'ask', id: page.newId(), text: box.value.trim() };
    const n = name.value.trim();
    page.save(NAME_KEY, n || null);
    if (!who.hidden && n) msg.name = n;
    box.value = note.textContent = '';
    typed();
    post('q' + msg.id, msg);
  };

  function take(m) {
    const k = Object.keys(page.outbox).find((k) => page.outbox[k].id === m.id && page.outbox[k].type !== 'answer');
    if (m.type === 'qa') {
      mode = m.mode;
      items = new Map();
      m.items.concat(m.pending).forEach(keep);
      mine = new Set(m.mine);
      voted = new Set(m.voted);
      tabs.hidden = mode === 'off';
      who.hidden = !m.names;
      $('zp-ask-mod').hidden = mode !== 'moderated';
      if (mode === 'off' && showing) show(false);
    } else if (m.type === 'qa_changes') {
      // In order on their line, and whole: no version to compare (a new line starts with `qa`).
      m.items.forEach(keep);
      m.removed.forEach((id) => items.delete(id));
      for (const id in m.votes) if (items.has(+id)) items.get(+id).votes = m.votes[id];
    } else if (m.type === 'qa_ack') {
      const i = m.item;
      if (k && k[0] === 'q') {
        mine.add(i.id);
        keep(i);
      } else {
        // A vote's ack is the truth about the count and the vote, not about pin or state.
        if (items.has(i.id)) items.get(i.id).votes = i.votes;
        voted[m.voted ? 'add' : 'delete'](i.id);
      }
      page.retryDelay = 2000;
      if (k) post(k);
    } else if (m.type === 'error' && k && m.code !== 'revoked') {
      if (!page.rejected(m.code)) return page.later(), true;
      // A refused ask goes back into the field, to be changed or sent again later.
      if (k[0] === 'q' && !box.value) box.value = page.outbox[k].text;
      note.textContent = m.message || '';
      if (m.code === 'not_open') {
        // Switched off while this phone was away (a phone connecting then gets no `qa`).
        tabs.hidden = true;
        mode = 'off';
        show(false);
        page.note = note.textContent;
      }
      typed();
      post(k);
    } else return false;
    draw();
    return true;
  }

  function draw() {
    if (!frame) frame = requestAnimationFrame(paint);
  }

  function paint() {
    frame = 0;
    let fresh = 0;
    for (const i of items.values()) {
      if (showing) seen.add(i.id);
      else if (!seen.has(i.id) && !mine.has(i.id)) fresh++;
    }
    badge.textContent = fresh || '';
    if (!showing) return;
    const by = order === 'top' ? (a, b) => b.votes - a.votes : () => 0;
    const rows = [...items.values()].sort((a, b) => b.pinned - a.pinned || by(a, b) || b.at - a.at || b.id - a.id);
    const focus = document.activeElement.dataset.v; // a vote button, redrawn
    list.replaceChildren(...rows.map(row));
    none.hidden = rows.length > 0;
    if (focus) list.querySelector(`[data-v="${focus}"]`)?.focus();
  }

  function row(i) {
    const own = mine.has(i.id);
    const wait = i.state === 'pending';
    const li = el('li', 'zp-card zp-qi' + (i.pinned ? ' zp-pin' : '') + (wait ? ' zp-pend' : ''));
    li.dataset.id = i.id;
    const body = el('div');
    if (i.pinned) body.append(el('p', 'zp-tag', T.qaStage));
    const about = [i.name || T.qaAnon, own && T.qaYours, wait && T.qaPending];
    body.append(el('p', '', i.text), el('p', 'zp-hint', about.filter(Boolean).join(' · ')));
    const v = on(i.id);
    // No vote on one's own item (the server refuses it too): its count only.
    const count = el(own ? 'span' : 'button', own ? 'zp-vote' : 'zp-vote zp-btn');
    const up = el('span', '', '▲');
    up.setAttribute('aria-hidden', 'true');
    count.append(up, ' ' + (i.votes + v - voted.has(i.id)));
    if (!own) {
      count.prepend(el('span', 'zp-sr', T.qaVote));
      count.dataset.v = i.id;
      count.setAttribute('aria-pressed', v);
      count.onclick = () => post('v' + i.id, { type: v ? 'unvote' : 'vote', id: page.newId(), item: i.id });
    }
    li.append(body, count);
    return li;
  }

  return {
    take,
    // A new question while the Questions are in view: a mark on the Poll tab.
    poll() {
      if (showing) pollTab.classList.add('zp-new');
    },
  };
}
