// The live inbox socket: authenticates with its first message (a browser cannot set an
// Authorization header on a websocket, and a token in the URL would land in logs),
// reconnects with backoff, and asks for what it missed with ?since=<last event id>.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const RESTART_RETRY_MS = 150; // 1012/1013: the server asked us to come straight back
const SLEEP_CHECK_MS = 5000;
// A timer that fires this much later than asked means the machine slept: the socket may
// look open and be dead, since a browser never probes an idle websocket itself.
const SLEEP_GAP_MS = 15000;
// After this long in a background tab, reconnect on return for the same reason.
const HIDDEN_RECONNECT_MS = 60000;

export const CLOSE_BAD_AUTH = 4401;
export const CLOSE_FORBIDDEN_ORIGIN = 4403;
const CLOSE_RESTARTING = 1012;
const CLOSE_TOO_SLOW = 1013;

function backoffMs(attempt) {
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  return base / 2 + Math.random() * (base / 2); // jitter: replicas restarting together
}

export class LiveInbox {
  // handlers: onHello({first}), onResync(), onEvent(event), onState(state), onRefused(code, reason)
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.lastEventId = null;
    this.headAtHello = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = true;
    this.hiddenAt = null;
    this.lastTick = Date.now();
    this.wake = this.wake.bind(this);
    this.onOffline = this.onOffline.bind(this);
    this.onVisibility = this.onVisibility.bind(this);
    this.checkForSleep = this.checkForSleep.bind(this);
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.wake);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisibility);
    this.sleepTimer = setInterval(this.checkForSleep, SLEEP_CHECK_MS);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.wake);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearInterval(this.sleepTimer);
    clearTimeout(this.retryTimer);
    this.drop();
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.drop();
    const url = new URL("/api/v1/inbox", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.hash = "";
    if (this.lastEventId) url.searchParams.set("since", this.lastEventId);
    const socket = new WebSocket(url);
    this.socket = socket;
    if (this.lastEventId === null) this.setState("connecting");
    socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", token: this.token })));
    socket.addEventListener("message", (message) => {
      if (socket === this.socket) this.receive(JSON.parse(message.data));
    });
    socket.addEventListener("close", (event) => {
      if (socket === this.socket) this.closed(event);
    });
  }

  // Forget the current socket without reacting to its close.
  drop() {
    const old = this.socket;
    this.socket = null;
    if (old && old.readyState <= WebSocket.OPEN) old.close(1000, "reconnecting");
  }

  receive(frame) {
    if (frame.type === "hello") {
      const first = this.lastEventId === null;
      // Later hellos keep our own cursor: the replay that follows moves it on.
      if (first) this.lastEventId = frame.last_event_id;
      this.headAtHello = frame.last_event_id;
      this.attempt = 0;
      this.setState("live");
      this.handlers.onHello({ first });
      return;
    }
    if (frame.type === "resync") {
      // What we missed was trimmed away: refetch, and go on from the newest event.
      this.lastEventId = this.headAtHello;
      this.handlers.onResync();
      return;
    }
    if (frame.id) this.lastEventId = frame.id;
    this.handlers.onEvent(frame);
  }

  closed(event) {
    this.socket = null;
    if (this.stopped) return;
    if (event.code === CLOSE_BAD_AUTH || event.code === CLOSE_FORBIDDEN_ORIGIN) {
      this.setState("offline");
      this.handlers.onRefused(event.code, event.reason);
      return;
    }
    if (!navigator.onLine) {
      this.setState("offline"); // the "online" event brings us back
      return;
    }
    const askedBack = event.code === CLOSE_RESTARTING || event.code === CLOSE_TOO_SLOW;
    const delay = askedBack && this.attempt === 0 ? RESTART_RETRY_MS : backoffMs(this.attempt);
    this.attempt += 1;
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // Back from sleep, from offline, or from a long time in the background: a fresh socket
  // now, asking for what was missed.
  wake() {
    if (this.stopped) return;
    this.attempt = 0;
    this.setState("reconnecting");
    this.connect();
  }

  onOffline() {
    if (!this.stopped) this.setState("offline");
  }

  onVisibility() {
    if (this.stopped) return;
    if (document.visibilityState === "hidden") {
      this.hiddenAt = Date.now();
      return;
    }
    const hiddenFor = this.hiddenAt === null ? 0 : Date.now() - this.hiddenAt;
    this.hiddenAt = null;
    if (hiddenFor > HIDDEN_RECONNECT_MS) this.wake();
    else if (this.socket === null) this.wake(); // waiting out a backoff: try now
  }

  checkForSleep() {
    const now = Date.now();
    const late = now - this.lastTick - SLEEP_CHECK_MS;
    this.lastTick = now;
    // Background tabs have their timers throttled: only a visible tab's lateness is sleep.
    if (late > SLEEP_GAP_MS && document.visibilityState === "visible") this.wake();
  }

  setState(state) {
    if (state !== this.state) {
      this.state = state;
      this.handlers.onState(state);
    }
  }
}
