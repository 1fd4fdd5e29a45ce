// A WebSocket that keeps itself connected: jittered exponential backoff, an
// immediate retry when the device comes back (network or screen), and an
// optional ping/pong heartbeat to catch sockets that died silently.

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
const PING_EVERY = 25000;
const PONG_WITHIN = 10000;

// path: a string or a function returning one (so a token can change between attempts).
// handlers: onMessage(obj), onStatus("connecting"|"open"|"reconnecting"), onOpen(),
// onClose(event) -> return false to stay closed until start() is called again.
export function openSocket(path, { onMessage, onStatus, onOpen, onClose, heartbeat = false } = {}) {
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
    const p = typeof path === 'function' ? path() : path;
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + p;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (stopped || ws) return;
    status(everOpen || tries ? 'reconnecting' : 'connecting');
    let sock;
    try {
      sock = new WebSocket(url());
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
    tries += 1;
    status('reconnecting');
    // Full jitter keeps thousands of phones from reconnecting in lockstep after a restart.
    const cap = Math.min(MAX_DELAY, MIN_DELAY * 2 ** (tries - 1));
    retryTimer = setTimeout(connect, MIN_DELAY + Math.random() * (cap - MIN_DELAY));
  }

  function ping() {
    if (!send({ type: 'ping', id: 'ping-' + ++pings })) return;
    clearTimeout(pongTimer);
    // Any message proves the link is alive; silence means a dead socket the browser has not noticed.
    pongTimer = setTimeout(() => drop(), PONG_WITHIN);
  }

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function wake() {
    if (stopped) return;
    if (!ws) {
      tries = 0;
      connect();
    } else if (heartbeat && ws.readyState === WebSocket.OPEN) {
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
      return !!ws && ws.readyState === WebSocket.OPEN;
    },
    start() {
      stopped = false;
      connect();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      drop();
    },
  };
}
