// The queue on screen: open hand-offs, urgent first, kept in step with the live events.
// Cards render at once from what the queue (or the event) says; the rest (who handed it
// off, the assessment, the PSA ticket) is fetched when a card comes near the viewport.
import { failureText } from "./api.js";
import { cardBody } from "./cards.js";
import { now } from "./clock.js";
import { byId, el, limiter, parseTime, reducedMotion, replaceKeepingFocus } from "./dom.js";
import { dueMs, mergeSla, slaState, tickSlaChip, withBreach, withTierNotified } from "./sla.js";
import { toast } from "./toast.js";

const PAGE_SIZE = 50;
const DETAIL_REQUESTS_AT_ONCE = 4;
const TAKEN_NOTICE_MS = 1200; // how long "Picked up by …" shows before the card goes
const LEAVE_ANIMATION_MS = 260;

const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };

// Urgent work first whatever its age, then newest first (the API's queue order), so a
// new card slides in at the top of its priority.
function screenOrder(a, b) {
  const byPriority = (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9);
  if (byPriority !== 0) return byPriority;
  const byTime = parseTime(b.created_at) - parseTime(a.created_at);
  return byTime !== 0 ? byTime : b.handoff_id.localeCompare(a.handoff_id);
}

// "Due first": the nearest claim deadline first (overdue ones lead), those without one
// last, each group otherwise in the usual order.
function dueOrder(a, b) {
  const aDue = dueMs(a);
  const bDue = dueMs(b);
  if (aDue !== bDue) return aDue < bDue ? -1 : 1;
  return screenOrder(a, b);
}

export const ORDERS = { newest: screenOrder, due: dueOrder };

export class Queue {
  constructor({ api, me, onPickUp, onRetry, onChange, onOverdue, order = "newest" }) {
    this.api = api;
    this.me = me;
    this.actions = { me, onPickUp, onRetry };
    this.onChange = onChange;
    this.onOverdue = onOverdue;
    this.order = ORDERS[order] ? order : "newest";
    this.cards = new Map(); // handoff id -> {item, handoff, session, busy, node, stale}
    this.list = byId("cards");
    this.nextCursor = null;
    this.fetchDetail = limiter(DETAIL_REQUESTS_AT_ONCE);
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) this.loadDetails(entry.target.dataset.handoffId);
      }
    }, { rootMargin: "600px 0px" });
    byId("queue-more").addEventListener("click", () => this.loadMore());
  }

  has(id) {
    return this.cards.has(id);
  }

  // The first page, reconciled with what is on screen: gone cards leave, new ones come,
  // and the ones kept refetch their details (events about them may have been missed).
  async load() {
    const { data } = await this.api(this.pagePath());
    const fresh = new Set(data.items.map((item) => item.handoff_id));
    for (const id of [...this.cards.keys()]) {
      if (!fresh.has(id)) this.remove(id, { quietly: true });
    }
    for (const item of data.items) {
      const card = this.cards.get(item.handoff_id);
      if (card) {
        card.item = item;
        card.stale = true;
        this.render(card);
      } else {
        this.add(item);
      }
    }
    this.nextCursor = data.next_cursor;
    this.loaded();
  }

  async loadMore() {
    if (!this.nextCursor) return;
    try {
      const { data } = await this.api(this.pagePath(this.nextCursor));
      for (const item of data.items) if (!this.cards.has(item.handoff_id)) this.add(item);
      this.nextCursor = data.next_cursor;
      this.loaded();
    } catch (error) {
      toast(`Could not load older hand-offs: ${failureText(error)}`, { kind: "error" });
    }
  }

  // A page of the queue in the order on screen, so "Due first" starts from the most
  // pressing even when there are more open hand-offs than one page.
  pagePath(cursor = null) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this.order === "due") params.set("order", "due");
    if (cursor) params.set("cursor", cursor);
    return `/queue?${params}`;
  }

  // Re-sorts the cards on screen; says whether the server must be asked again (older
  // pages not loaded yet may hold nearer deadlines).
  setOrder(order) {
    if (!ORDERS[order] || order === this.order) return false;
    this.order = order;
    const compare = ORDERS[order];
    const sorted = [...this.cards.values()].sort((a, b) => compare(a.item, b.item));
    for (const card of sorted) if (card.node.isConnected) this.list.append(card.node);
    return this.nextCursor !== null;
  }

  loaded() {
    byId("queue-loading").hidden = true;
    byId("queue-more").hidden = !this.nextCursor;
    this.changed();
  }

  add(item, { live = false, handoff = null } = {}) {
    if (this.cards.has(item.handoff_id)) return;
    const node = el("li", { class: "card", tabindex: "-1", dataset: { handoffId: item.handoff_id } });
    const card = { item, handoff, session: null, busy: false, node, stale: !handoff };
    this.cards.set(item.handoff_id, card);
    this.render(card);
    this.place(card);
    if (live && !reducedMotion()) {
      node.classList.add("arriving");
      node.addEventListener("animationend", () => node.classList.remove("arriving"), { once: true });
    }
    this.observer.observe(node);
    this.changed();
  }

  place(card) {
    const compare = ORDERS[this.order];
    const before = [...this.cards.values()]
      .filter((other) => other !== card && other.node.isConnected)
      .sort((a, b) => compare(a.item, b.item))
      .find((other) => compare(card.item, other.item) < 0);
    this.list.insertBefore(card.node, before ? before.node : null);
  }

  // takenBy: the name of whoever picked it up, shown for a moment before the card goes.
  remove(id, { takenBy = null, quietly = false } = {}) {
    const card = this.cards.get(id);
    if (!card) return;
    this.cards.delete(id);
    this.observer.unobserve(card.node);
    const gone = () => {
      // Decided now, not when the card started to leave: the keyboard may have moved on.
      const hadFocus = card.node.contains(document.activeElement);
      const next = [card.node.nextElementSibling, card.node.previousElementSibling]
        .find((node) => node && !node.classList.contains("leaving") && !node.classList.contains("taken"));
      card.node.remove();
      if (hadFocus) (next ?? byId("queue")).focus();
    };
    this.changed();
    if (quietly || reducedMotion()) {
      gone();
      return;
    }
    if (takenBy) {
      card.node.classList.add("taken");
      card.node.append(el("p", { class: "taken-notice" }, `Picked up by ${takenBy}`));
      card.node.querySelectorAll("button").forEach((button) => { button.disabled = true; });
    }
    setTimeout(() => {
      card.node.style.height = `${card.node.offsetHeight}px`;
      card.node.classList.add("leaving");
      requestAnimationFrame(() => { card.node.style.height = "0px"; });
      setTimeout(gone, LEAVE_ANIMATION_MS);
    }, takenBy ? TAKEN_NOTICE_MS : 0);
  }

  setBusy(id, busy) {
    const card = this.cards.get(id);
    if (!card) return;
    card.busy = busy;
    this.render(card);
  }

  card(id) {
    return this.cards.get(id) ?? null;
  }

  async loadDetails(id, { force = false } = {}) {
    const card = this.cards.get(id);
    if (!card || card.loading || (!card.stale && !force)) return;
    card.loading = true;
    try {
      const [handoff, session] = await this.fetchDetail(() => Promise.all([
        this.api(`/handoffs/${id}`),
        card.session ? Promise.resolve({ data: card.session }) : this.api(`/sessions/${card.item.session_id}`),
      ]));
      card.handoff = handoff.data;
      card.session = session.data;
      // A card that arrived as an event lacks the domain; the snapshot has it.
      card.item.problem_domain ??= card.handoff.snapshot?.problem_domain ?? null;
      // ... and perhaps its SLA; an event that came while this was asked for still counts.
      const dueBefore = dueMs(card.item);
      card.item.sla = mergeSla(card.item.sla, card.handoff.sla);
      card.stale = false;
      if (this.cards.get(id) !== card) return;
      this.render(card);
      if (this.order === "due" && dueMs(card.item) !== dueBefore) this.place(card);
      // A tier (the built-in reminder, or one with raise_priority) may have raised it.
      if (card.item.priority !== card.handoff.priority) {
        card.item.priority = card.handoff.priority;
        this.render(card);
        this.place(card);
      }
    } catch {
      // Left stale: the next time it scrolls into view, or the next event, tries again.
    } finally {
      card.loading = false;
      if (card.refetch && this.cards.get(id) === card) {
        card.refetch = false;
        this.loadDetails(id, { force: true });
      }
    }
  }

  // An event said the hand-off changed (its assessment, a tier): fetch it again now, or
  // once more after a fetch already under way, which may have left before the change.
  refresh(id) {
    const card = this.cards.get(id);
    if (!card) return;
    card.stale = true;
    if (card.loading) card.refetch = true;
    else this.loadDetails(id, { force: true });
  }

  // handoff_tier_notified: the card says which tier was told, as of now.
  tierNotified(event) {
    const card = this.cards.get(event.handoff_id);
    if (!card) return;
    card.item.sla = withTierNotified(card.item.sla, event, new Date(now()).toISOString());
    this.render(card);
  }

  // handoff_sla_breached: overdue whatever this machine's clock says.
  breached(event) {
    const card = this.cards.get(event.handoff_id);
    if (!card) return;
    const dueBefore = dueMs(card.item);
    card.item.sla = withBreach(card.item.sla, event);
    this.render(card);
    if (this.order === "due" && dueMs(card.item) !== dueBefore) this.place(card);
  }

  // The page's one timer, once a second: every countdown moves on together.
  tick(nowMs = now()) {
    for (const card of this.cards.values()) {
      if (!card.item.sla?.claim_due_at) continue;
      const overdue = tickSlaChip(card.node.querySelector(".sla"), card.item.sla, nowMs);
      this.noteOverdue(card, overdue);
    }
  }

  // Tells (once, for screen readers too) when a card on screen becomes overdue; a card
  // that was overdue when it first showed is not news.
  noteOverdue(card, overdue) {
    const known = Boolean(card.item.sla?.claim_due_at);
    card.node.dataset.sla = !known ? "none" : overdue ? "overdue" : "due";
    if (!known) return;
    const was = card.overdue;
    card.overdue = overdue;
    if (overdue && was === false) this.onOverdue?.(card.item);
  }

  render(card) {
    card.node.dataset.priority = card.item.priority;
    card.node.dataset.intent = card.item.intent;
    replaceKeepingFocus(card.node, cardBody(card, this.actions));
    this.noteOverdue(card, Boolean(slaState(card.item.sla, now())?.overdue));
  }

  changed() {
    const count = this.cards.size;
    byId("queue-count").textContent = count === 1 ? "1 open" : `${count} open`;
    byId("queue-empty").hidden = count > 0 || !byId("queue-loading").hidden;
    this.onChange?.(count);
  }
}
