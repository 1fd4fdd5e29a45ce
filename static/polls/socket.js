// A WebSocket that keeps itself connected: jittered exponential backoff, an
// immediate retry when the device comes back (network or screen), and an
// optional ping/pong heartbeat to catch sockets that died silently.
// Where a network breaks WebSockets, it falls back by itself to plain HTTP
// (server-sent events in, POSTs out; docs/protocol.md) for the page's life.

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
const FIRST_SPREAD = 1500; // the first retry: 0.5-1.5 s after the drop
const PING_EVERY = 25000;
const PONG_WITHIN = 10000;
const GIVE_UP_AFTER = 8000; // ms without a word over a WebSocket: fall back
const GIVE_UP_TRIES = 3;

// The HTTP fallback dressed as a WebSocket, so everything below serves both:
// `base + 'events'` streams what the socket would send, `base + 'answer'`
// takes what it would be sent and replies with what it would reply.
function httpSocket(base, query) {
  const s = { readyState: 0, close: () => end(1000) };
  const es = new EventSource(base + 'events' + query);
  function end(code) {
    if (s.readyState > 2) return;
    s.readyState = 3;
    es.close();
    if (s.onclose) s.onclose({ code });
  }
  // 401, 403 and 404 mean what the socket's 4401, 4403 and 4404 mean; anything else is a
  // dead line.
  const closeCode = (r) => ({ 401: 4401, 403: 4403, 404: 4404 })[r.status] || 1006;
  const post = (text) =>
    fetch(base + 'answer' + query, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: text,
    });
  const tell = (data) => s.onmessage && s.onmessage({ data });
  // The reply (ack, error, pong) arrives as if the socket had sent it.
  s.send = (text) =>
    post(text)
      .then((r) => (r.ok ? r.text() : Promise.reject(closeCode(r))))
      .then(tell, (code) => end(+code || 1006));
  es.onopen = () => {
    s.readyState = 1;
    if (s.onopen) s.onopen();
  };
  es.onmessage = (e) => tell(e.data);
  es.addEventListener('close', (e) => end(JSON.parse(e.data).code));
  // EventSource would retry by itself but cannot tell a refused token from a
  // dead line: a ping asks, and the socket's backoff takes over from here.
  es.onerror = () => {
    es.close();
    if (s.readyState) end(1006);
    else post('{"type":"ping"}').then((r) => end(closeCode(r)), () => end(1006));
  };
  return s;
}

// path: a string or a function returning one (so a token can change between attempts).
// handlers: onMessage(obj), onStatus("connecting"|"open"|"reconnecting"), onOpen(),
// onClose(event) -> return false to stay closed until start() is called again.
// fallback: the HTTP fallback's base path (the path's query is reused); `?transport=http`
// on the page forces it.
export function openSocket(
  path,
  { onMessage, onStatus, onOpen, onClose, heartbeat = false, fallback } = {},
) {
  let http = !!fallback && (!window.WebSocket || /[?&]transport=http\b/.test(location.search));
  let proven = !fallback; // a server spoke over a WebSocket: no need to fall back
  let giveUpTimer = 0;
  let ws = null;
  let stopped = true;
  let tries = 0;
  let everOpen = false;
  let retryTimer = 0;
  let pingTimer = 0;
  let pongTimer = 0;
  let pings = 0;

  const status = (s) => onStatus && onStatus(s);

  function url() {
    return typeof path === 'function' ? path() : path;
  }

  function fallBack() {
    if (proven || http) return;
    http = true;
    tries = 0;
    drop(); // the WebSocket still trying, if any; the next attempt is over HTTP
  }

  function prove() {
    proven = true;
    clearTimeout(giveUpTimer);
  }

  function connect() {
    clearTimeout(retryTimer);
    if (stopped || ws) return;
    status(everOpen || tries ? 'reconnecting' : 'connecting');
    let sock;
    try {
      const p = url();
      sock = http
        ? httpSocket(fallback, p.replace(/^[^?]*/, ''))
        : new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + p);
    } catch {
      schedule();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      everOpen = true;
      status('open');
      if (heartbeat) pingTimer = setInterval(ping, PING_EVERY);
      if (onOpen) onOpen();
    };
    sock.onmessage = (e) => {
      // Only a connection that delivers data counts as healthy: a server that
      // accepts and closes at once must not be retried at full speed forever.
      tries = 0;
      if (!http) prove();
      clearTimeout(pongTimer);
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (onMessage) onMessage(msg);
    };
    sock.onclose = (e) => {
      if (!http && e.code >= 4000 && e.code < 5000) prove(); // our server's own close code
      if (ws === sock) drop(e);
    };
  }

  // Forget the current socket; reconnect unless stopped or the owner says no.
  function drop(closeEvent) {
    const sock = ws;
    ws = null;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    if (sock) {
      sock.onopen = sock.onmessage = sock.onclose = null;
      if (sock.readyState < 2) sock.close();
    }
    if (stopped) return;
    if (closeEvent && onClose && onClose(closeEvent) === false) {
      stopped = true;
      return;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(retryTimer);
    tries += 1;
    if (tries > GIVE_UP_TRIES && !http && !proven) return fallBack();
    status('reconnecting');
    // Full jitter keeps thousands of phones from reconnecting in lockstep after a restart,
    // the first retry too: a hall whose server went away all drops in the same instant.
    const cap = Math.min(MAX_DELAY, FIRST_SPREAD * 2 ** (tries - 1));
    retryTimer = setTimeout(connect, MIN_DELAY + Math.random() * (cap - MIN_DELAY));
  }

  function ping() {
    if (!send({ type: 'ping', id: 'ping-' + ++pings })) return;
    clearTimeout(pongTimer);
    // Any message proves the link is alive; silence means a dead socket the browser has not noticed.
    pongTimer = setTimeout(() => drop(), PONG_WITHIN);
  }

  function send(msg) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function wake() {
    if (stopped) return;
    if (!ws) {
      tries = 0;
      connect();
    } else if (heartbeat && ws.readyState === 1) {
      ping(); // a phone that slept may be holding a socket that is already gone
    }
  }

  addEventListener('online', wake);
  // The browser may keep a socket "open" long after the network went away; say so now.
  addEventListener('offline', () => {
    if (ws && !stopped) drop();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') wake();
  });

  return {
    send,
    get isOpen() {
      return !!ws && ws.readyState === 1;
    },
    start() {
      stopped = false;
      if (!proven && !http) giveUpTimer = setTimeout(fallBack, GIVE_UP_AFTER);
      connect();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(giveUpTimer);
      drop();
    },
  };
}
