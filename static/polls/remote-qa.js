// The remote's Q&A section (templates/polls/_host_qa.html). Its buttons post without leaving the
// page, and the section is fetched again (?part=qa) when a press of its own returns or when the
// stage socket's qa_board says the Q&A moved (a question waiting, votes, another device's press).
// The fresh copy is the template the page itself was rendered from, escaped by Django, so it goes
// in as parsed markup; no text from the socket ever does.

const GAP = 1000; // ms: a vote storm moves the board ten times a second; the host needs one

export function remoteQa(section, leaving) {
  if (!section) return { owns: () => false, board() {} };
  const url = location.pathname;
  let seen = null; // the last board heard: version, pending, mode, shown
  let seq = 0;
  let applied = 0;
  let timer = 0;
  let loading = false;
  let again = false;
  let last = 0;
  let pressing = false;
  let sent = ''; // the item whose form was just posted: its open form is done with
  let touching = false;
  let releaseTimer = 0;
  let held = null; // a fresh copy that arrived under the host's finger

  // --- the host's presses ---------------------------------------------------------------

  section.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.dataset.native) return; // the fetch failed: the browser posts it (and reloads)
    e.preventDefault();
    if (pressing || leaving()) return;
    const by = e.submitter;
    const body = new FormData(form);
    if (by && by.name) body.append(by.name, by.value);
    body.set('part', 'qa');
    const item = form.querySelector('input[name=item]');
    sent = item ? item.value : '';
    pressing = true;
    section.setAttribute('aria-busy', 'true');
    load(fetch(url, { method: 'POST', body, credentials: 'same-origin' }))
      .then(
        (fresh) => fresh && swap(fresh),
        () => {
          form.dataset.native = '1';
          form.requestSubmit(by && by.form === form ? by : null);
        },
      )
      .finally(() => {
        pressing = false;
        section.removeAttribute('aria-busy');
        if (again) {
          again = false;
          schedule();
        }
      });
  });

  // A refresh never lands under a finger about to tap: rows may have moved (votes reorder them).
  section.addEventListener('pointerdown', () => {
    touching = true;
    clearTimeout(releaseTimer);
  });
  addEventListener('pointerup', release);
  addEventListener('pointercancel', release);
  function release() {
    if (!touching) return;
    clearTimeout(releaseTimer);
    releaseTimer = setTimeout(() => {
      touching = false;
      if (held) swap(held);
      held = null;
    }, 400);
  }
  // An item kept while its form was open may be stale by now: a fresh copy once it closes.
  section.addEventListener('toggle', (e) => e.target.open || schedule(), true);

  // --- what the stage socket says ---------------------------------------------------------

  function board(m) {
    if (seen && m.version < seen.version) return;
    const d = section.dataset;
    const moved = seen
      ? m.version !== seen.version || m.pending !== seen.pending || m.mode !== seen.mode || m.shown !== seen.shown
      : m.mode !== d.mode || String(+m.shown) !== d.shown || String(m.pending) !== d.pending || String(m.open) !== d.open;
    seen = { version: m.version, pending: m.pending, mode: m.mode, shown: m.shown };
    if (moved) schedule();
  }

  function schedule() {
    if (loading) {
      again = true;
      return;
    }
    if (!timer) timer = setTimeout(refresh, Math.max(0, last + GAP - Date.now()));
  }

  function refresh() {
    timer = 0;
    if (leaving()) return;
    if (pressing) {
      again = true; // after the press's own copy, which may be the newer one
      return;
    }
    loading = true;
    last = Date.now();
    load(fetch(url + '?part=qa', { credentials: 'same-origin', cache: 'no-store' }))
      .then((fresh) => {
        if (fresh && touching) held = fresh;
        else if (fresh) swap(fresh);
      })
      .catch(() => {}) // the next board tries again
      .finally(() => {
        loading = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  // The fresh section a request brought, or null when a later request's came first (answers
  // may arrive out of order); it fails on anything else (a login page, an error page).
  async function load(request) {
    const mine = ++seq;
    const response = await request;
    const html = response.ok ? await response.text() : '';
    const fresh = html && new DOMParser().parseFromString(html, 'text/html').getElementById('hs-qa');
    if (!fresh) throw new Error('no Q&A section in the answer');
    if (mine <= applied) return null;
    applied = mine;
    return fresh;
  }

  // --- putting a fresh copy in place ------------------------------------------------------

  function swap(fresh) {
    held = null;
    // An item whose edit or set-aside form is open keeps its node: the typed text, the focus.
    const kept = new Map();
    for (const li of section.querySelectorAll('[data-item]')) {
      if (li.dataset.item !== sent && li.querySelector('details[open]')) kept.set(li.dataset.item, li);
    }
    sent = '';
    const openGroups = new Set();
    for (const d of section.querySelectorAll('details[open][data-keep]')) if (!d.closest('[data-item]')) openGroups.add(d.dataset.keep);
    const anchor = anchorOf(kept);
    const focus = section.contains(document.activeElement) ? document.activeElement : null;
    const caret = focus && focus.tagName === 'TEXTAREA' ? [focus.selectionStart, focus.selectionEnd] : null;

    for (const li of fresh.querySelectorAll('[data-item]')) {
      const old = kept.get(li.dataset.item);
      if (old) li.replaceWith(old);
    }
    for (const d of fresh.querySelectorAll('details[data-keep]')) {
      if (openGroups.has(d.dataset.keep) && !d.closest('[data-item]')) d.open = true;
    }
    for (const name of Object.keys(section.dataset)) delete section.dataset[name];
    Object.assign(section.dataset, fresh.dataset);
    // The browser's own scroll anchoring would fight the correction below.
    const html = document.documentElement;
    html.classList.add('hs-hold');
    section.replaceChildren(...fresh.childNodes);
    const now = anchor && anchor.find();
    if (now) scrollBy(0, now.getBoundingClientRect().top - anchor.top);
    if (focus && focus.isConnected) {
      focus.focus({ preventScroll: true });
      if (caret) focus.setSelectionRange(...caret);
    }
    requestAnimationFrame(() => html.classList.remove('hs-hold'));
  }

  // What must stay put on the screen: the open form, else the heading of the group in view (a
  // new question waiting above then pushes nothing down; a row reordered by votes is not
  // followed across the list).
  function anchorOf(kept) {
    const hold = (node, find) => ({ top: node.getBoundingClientRect().top, find });
    for (const li of kept.values()) return hold(li, () => (li.isConnected ? li : null));
    let heading = null;
    for (const h of section.querySelectorAll('.hs-qa-group[id]')) {
      if (h.getBoundingClientRect().top < innerHeight / 2) heading = h;
    }
    if (!heading) return null;
    const id = heading.id;
    return hold(heading, () => document.getElementById(id));
  }

  return { owns: (e) => section.contains(e.target), board };
}
