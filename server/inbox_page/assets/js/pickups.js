// "Your pick-ups": the hand-offs this senior won, each with its briefing (shown the
// moment handoff_briefing_ready arrives). Remembered per user in localStorage so a
// reload still shows them; the server is asked again each time, so it stays the truth.
import { PRIORITY_LABELS, assessmentBlock } from "./cards.js";
import { byId, el, replaceKeepingFocus, timeAgo } from "./dom.js";

const STORAGE_PREFIX = "baton.pickups.";
const KEPT_AT_MOST = 20;

export class Pickups {
  constructor({ api, me, onRelease }) {
    this.api = api;
    this.me = me;
    this.onRelease = onRelease;
    this.entries = new Map(); // handoff id -> {handoff, briefing: {status, text}, node}
    this.list = byId("pickup-list");
    this.storageKey = STORAGE_PREFIX + me.id;
  }

  has(id) {
    return this.entries.has(id);
  }

  async restore() {
    let ids = [];
    try {
      ids = JSON.parse(localStorage.getItem(this.storageKey) || "[]");
    } catch {
      ids = [];
    }
    for (const id of ids) await this.ensure(id); // oldest first: each new one goes on top
    this.save();
  }

  // Show a hand-off we hold, fetching it first (a claim from another tab, a restore).
  async ensure(id) {
    if (this.entries.has(id)) return;
    try {
      const { data } = await this.api(`/handoffs/${id}`);
      if (data.state === "claimed" && data.claimed_by?.id === this.me.id) this.add(data);
    } catch {
      // Gone or unreachable: nothing to show.
    }
  }

  add(handoff, { focus = false } = {}) {
    if (this.entries.has(handoff.id)) return;
    const entry = { handoff, briefing: { status: "pending", text: null }, node: el("li", { class: "pickup" }) };
    this.entries.set(handoff.id, entry);
    this.list.prepend(entry.node);
    this.render(entry);
    this.changed();
    this.loadBriefing(handoff.id);
    if (focus) {
      entry.node.scrollIntoView({ block: "nearest" });
      entry.node.querySelector("h3").focus();
    }
  }

  forget(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.node.remove();
    this.changed();
  }

  async loadBriefing(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    try {
      const { status, data } = await this.api(`/handoffs/${id}/briefing`);
      entry.briefing = status === 200 ? { status: "ready", text: data.briefing } : { status: "pending", text: null };
    } catch {
      entry.briefing = { status: "error", text: null };
    }
    if (this.entries.get(id) === entry) this.render(entry);
  }

  // After a reconnect: anything still waiting may have had its event while we were away.
  refreshPending() {
    for (const [id, entry] of this.entries) if (entry.briefing.status !== "ready") this.loadBriefing(id);
  }

  async refresh(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    try {
      entry.handoff = (await this.api(`/handoffs/${id}`)).data;
      this.render(entry);
    } catch {
      // Kept as it was.
    }
  }

  briefingBlock(entry) {
    const { status, text } = entry.briefing;
    if (status === "ready") {
      return el("section", { class: "briefing", "aria-label": "Briefing" },
        el("p", { class: "briefing-title" }, "Briefing"),
        el("p", { class: "briefing-text" }, text || "The briefing is empty."));
    }
    if (status === "error") {
      return el("section", { class: "briefing briefing-error" },
        el("p", {}, "The briefing could not be loaded."),
        el("button", { type: "button", class: "quiet-button", onclick: () => this.loadBriefing(entry.handoff.id) },
          "Try again"));
    }
    return el("section", { class: "briefing briefing-pending", "aria-busy": "true" },
      el("p", { class: "briefing-title" }, "Briefing"),
      el("p", { class: "pending-text" }, "Writing your briefing…"),
      el("div", { class: "shimmer", "aria-hidden": "true" }, el("span"), el("span"), el("span")));
  }

  render(entry) {
    const { handoff } = entry;
    const summary = handoff.snapshot?.problem_summary || "No problem summary given";
    const assessment = assessmentBlock(handoff);
    replaceKeepingFocus(entry.node,
      el("div", { class: "card-chips" },
        el("span", { class: `chip priority priority-${handoff.priority}` },
          PRIORITY_LABELS[handoff.priority] ?? handoff.priority),
        el("span", { class: "chip mine" }, "Yours"),
        handoff.claimed_at ? timeAgo(handoff.claimed_at) : null),
      el("h3", { class: "pickup-title", tabindex: "-1" }, summary),
      el("p", { class: "byline" }, `From ${handoff.handed_off_by.name}`),
      handoff.engineer_notes
        ? el("div", { class: "notes" }, el("p", { class: "label" }, "Engineer notes"),
          el("p", { class: "notes-text" }, handoff.engineer_notes))
        : null,
      this.briefingBlock(entry),
      assessment ? el("details", { class: "pickup-assessment" }, el("summary", {}, "AI assessment"), assessment) : null,
      el("div", { class: "card-actions" },
        el("button", { type: "button", class: "quiet-button hide", onclick: () => this.forget(handoff.id) }, "Hide"),
        el("button", { type: "button", class: "quiet-button release", onclick: () => this.onRelease(handoff.id) },
          "Give back to the queue")),
    );
  }

  changed() {
    byId("pickups-empty").hidden = this.entries.size > 0;
    this.save();
  }

  save() {
    const ids = [...this.entries.keys()].slice(-KEPT_AT_MOST);
    try {
      localStorage.setItem(this.storageKey, JSON.stringify(ids));
    } catch {
      // Storage full or disabled: the panel just starts empty next time.
    }
  }
}
