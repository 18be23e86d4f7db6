// The inbox page: sign in, load the queue, then keep it live.
import { ApiError, createApi, failureText } from "./api.js";
import { Bell } from "./bell.js";
import { queueItemFrom } from "./cards.js";
import { now } from "./clock.js";
import { agoText, byId, parseTime, tickAges } from "./dom.js";
import { CLOSE_BAD_AUTH, LiveInbox } from "./live.js";
import { Pickups } from "./pickups.js";
import { ORDERS, Queue } from "./queue.js";
import { toast } from "./toast.js";

const TOKEN_KEY = "baton.token"; // sessionStorage: this tab only, gone when it closes
const ORDER_KEY = "baton.queue-order"; // localStorage: a preference, not a secret
const TICK_MS = 1000;
const QUEUE_RETRY_MS = 3000;
// Not every bell row has an inbox event of its own: look at the bell now and then.
const BELL_POLL_MS = 60000;

const CONNECTION_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

// `baton dev` links carry the token in the fragment, which browsers never send to the
// server; keep it for this tab and take it out of the address bar and history at once.
function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
}

function showSignIn(message = "") {
  byId("session-controls").hidden = true;
  byId("inbox").hidden = true;
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message;
  byId("token-input").focus();
}

async function whoIs(token) {
  const { data } = await createApi(token)("/me");
  return data;
}

async function signIn(token) {
  try {
    const me = await whoIs(token);
    sessionStorage.setItem(TOKEN_KEY, token);
    startInbox(token, me);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      const why = error.status === 403 ? "That is not a user's token." : "That token was not accepted.";
      showSignIn(`${why} ${error.message}`);
    } else {
      showSignIn(failureText(error));
    }
  }
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  // Simplest honest reset of every live part: a fresh page.
  if (message) sessionStorage.setItem("baton.signed-out-because", message);
  window.location.replace(window.location.pathname);
}

function setConnection(state) {
  const node = byId("connection");
  node.dataset.state = state;
  byId("connection-label").textContent = CONNECTION_LABELS[state] ?? state;
}

function savedOrder() {
  try {
    return localStorage.getItem(ORDER_KEY) || "newest";
  } catch {
    return "newest";
  }
}

// The sort buttons ("Newest", "Due first"): a pair of toggles, one pressed.
function showOrder(order) {
  for (const button of document.querySelectorAll("#queue-sort [data-order]")) {
    button.setAttribute("aria-pressed", String(button.dataset.order === order));
  }
}

function startInbox(token, me) {
  const api = createApi(token, { onUnauthorized: () => signOut("Your session ended: sign in again.") });
  byId("sign-in").hidden = true;
  byId("session-controls").hidden = false;
  byId("inbox").hidden = false;
  byId("who").textContent = `${me.name} · ${me.role}`;
  byId("sign-out").addEventListener("click", () => signOut());

  const announce = (text) => { byId("announcer").textContent = text; };

  const queue = new Queue({
    api,
    me,
    onPickUp: pickUp,
    onRetry: retryAssessment,
    onOverdue: (item) => announce(`Overdue, not picked up: ${item.problem_summary || "no summary"}`),
    order: savedOrder(),
  });
  showOrder(queue.order);
  byId("queue-sort").addEventListener("click", (event) => {
    const order = event.target.closest("[data-order]")?.dataset.order;
    if (!order || !ORDERS[order]) return;
    showOrder(order);
    try {
      localStorage.setItem(ORDER_KEY, order);
    } catch {
      // Storage refused (private mode, quota): the order still holds for this page.
    }
    if (queue.setOrder(order)) reloadQueue();
  });
  const pickups = new Pickups({ api, me, onRelease: release });
  const bell = new Bell({
    api,
    onShowHandoff: (id) => {
      const card = queue.card(id);
      if (card) {
        card.node.scrollIntoView({ block: "center" });
        card.node.focus();
      } else if (!pickups.has(id)) {
        toast("That hand-off is no longer in the queue.");
      }
    },
  });

  async function pickUp(id) {
    queue.setBusy(id, true);
    try {
      const { data } = await api(`/handoffs/${id}/claim`, { method: "POST" });
      queue.remove(id, { quietly: true });
      pickups.add(data, { focus: true });
      announce("Picked up. The briefing is in Your pick-ups.");
    } catch (error) {
      const problem = error instanceof ApiError ? error.problem : {};
      if (error instanceof ApiError && error.status === 409 && problem.claimed_by_name) {
        const when = problem.claimed_at ? ` ${agoText(parseTime(problem.claimed_at))}` : "";
        toast(`Already claimed by ${problem.claimed_by_name}${when}`, { kind: "warning" });
        queue.remove(id);
      } else if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
        toast(error.message, { kind: "warning" });
        queue.remove(id);
      } else {
        toast(`Could not pick it up: ${failureText(error)}`, { kind: "error" });
        queue.setBusy(id, false);
      }
    }
  }

  async function release(id) {
    try {
      const { data } = await api(`/handoffs/${id}/release`, { method: "POST" });
      pickups.forget(id);
      if (data.state === "open") queue.add(queueItemFrom(data), { live: true, handoff: data });
    } catch (error) {
      toast(`Could not give it back: ${failureText(error)}`, { kind: "error" });
    }
  }

  async function retryAssessment(id) {
    try {
      await api(`/handoffs/${id}/assessment`, { method: "POST" });
      queue.refresh(id);
    } catch (error) {
      toast(`Could not retry the assessment: ${failureText(error)}`, { kind: "error" });
    }
  }

  async function showReturned(id) {
    try {
      const { data } = await api(`/handoffs/${id}`);
      if (data.state === "open") queue.add(queueItemFrom(data), { live: true, handoff: data });
    } catch {
      // Gone again already: nothing to show.
    }
  }

  function apply(event) {
    switch (event.type) {
      case "handoff_created":
        queue.add({ problem_domain: null, ...event }, { live: true });
        announce(`New ${event.intent === "escalate" ? "escalation" : "parked session"}: ${event.problem_summary || "no summary"}`);
        bell.refreshSoon();
        break;
      case "handoff_claimed":
        if (event.claimed_by_id === me.id) {
          queue.remove(event.handoff_id, { quietly: true });
          pickups.ensure(event.handoff_id);
        } else {
          queue.remove(event.handoff_id, { takenBy: event.claimed_by_name });
          pickups.forget(event.handoff_id);
        }
        break;
      case "handoff_released":
        pickups.forget(event.handoff_id);
        showReturned(event.handoff_id);
        break;
      case "handoff_superseded":
        queue.remove(event.handoff_id);
        break;
      case "handoff_assessment_ready":
        queue.refresh(event.handoff_id);
        pickups.refresh(event.handoff_id);
        break;
      case "handoff_briefing_ready":
        pickups.loadBriefing(event.handoff_id);
        break;
      case "handoff_tier_notified":
        queue.tierNotified(event);
        // The tier may have raised the priority (raise_priority), which only the hand-off says.
        queue.refresh(event.handoff_id);
        // A tier that rang this senior's bell: show it now, not at the next poll.
        if (event.recipients?.some((person) => person.id === me.id)) bell.refreshSoon();
        break;
      case "handoff_sla_breached":
        queue.breached(event);
        break;
      default:
        break; // a newer server's event: nothing to do with it here
    }
  }

  // Events that arrive while the queue is being fetched wait for it, then apply on top:
  // each one is idempotent, so one already reflected in the fetched queue changes nothing.
  // A reload asked for during one (the sort changed) runs once more after it.
  let waiting = null;
  let again = false;
  async function reloadQueue() {
    if (waiting) {
      again = true;
      return;
    }
    waiting = [];
    try {
      await queue.load();
    } catch (error) {
      toast(`Could not load the queue: ${failureText(error)} Trying again…`, { kind: "error" });
      again = false; // the retry asks in whatever order is chosen by then
      setTimeout(reloadQueue, QUEUE_RETRY_MS);
    } finally {
      const events = waiting;
      waiting = null;
      events.forEach(apply);
      if (again) {
        again = false;
        reloadQueue();
      }
    }
  }

  const live = new LiveInbox(token, {
    onHello: ({ first }) => {
      if (first) reloadQueue();
      else pickups.refreshPending();
      bell.refresh();
    },
    onResync: () => reloadQueue(),
    onEvent: (event) => (waiting ? waiting.push(event) : apply(event)),
    onState: setConnection,
    onRefused: (code, reason) => {
      if (code === CLOSE_BAD_AUTH) signOut(`Your session ended: ${reason || "sign in again."}`);
      else toast(`The live inbox refused this page: ${reason}`, { kind: "error" });
    },
  });

  pickups.restore();
  live.start();
  // One timer for every clock on the page: ages, countdowns, "notified … ago".
  const tick = () => {
    const nowMs = now();
    tickAges(document, nowMs);
    queue.tick(nowMs);
  };
  setInterval(tick, TICK_MS);
  // A background tab's timers are throttled: catch up the moment it is looked at.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tick();
  });
  setInterval(() => {
    if (document.visibilityState === "visible") bell.refresh();
  }, BELL_POLL_MS);
}

function boot() {
  takeTokenFromFragment();
  byId("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token-input").value.trim();
    if (!token) {
      showSignIn("Paste a token first.");
      return;
    }
    byId("sign-in-error").textContent = "";
    signIn(token);
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  const why = sessionStorage.getItem("baton.signed-out-because");
  sessionStorage.removeItem("baton.signed-out-because");
  if (token) signIn(token);
  else showSignIn(why || "");
}

boot();
