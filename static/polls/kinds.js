// The question kinds a page draws: each kind's renderer module for this face, listed by the
// server (config.kinds: kind -> module URL, hashed in production; polls/views.py). The page
// loads them before the first state, so a question change never waits for a fetch; a kind whose
// module failed to load is drawn by the page's plain fallback.
export async function loadKinds(urls) {
  const kinds = {};
  const entries = Object.entries(urls || {});
  const loaded = await Promise.allSettled(entries.map(([, url]) => import(url)));
  loaded.forEach((r, i) => {
    if (r.status === 'fulfilled') kinds[entries[i][0]] = r.value.default;
    else console.warn('kind module', entries[i][1], r.reason);
  });
  return kinds;
}
