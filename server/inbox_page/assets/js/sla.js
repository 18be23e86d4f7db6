// A card's SLA: the countdown to claim_due_at ("Due in 4:32"), the breach ("Overdue
// 3 min") and the last tier notified ("Tier 2 notified 4 min ago").
//
// `sla` is the wire's {policy_id, claim_due_at, breached_at, last_tier: {tier, round,
// at} | null}, or null (a park, or a hand-off under the built-in default without an SLA).
// The countdown is rendered once and then only its text and state change, on the page's
// one timer (Queue.tick): no timer per card.
import { el, parseTime, timeAgo } from "./dom.js";

const MINUTE_S = 60;
const HOUR_S = 60 * MINUTE_S;
const DAY_S = 24 * HOUR_S;

const pad2 = (number) => String(number).padStart(2, "0");

// "4:32" under an hour, "2 h 05 min" under a day, "3 d 4 h" beyond.
function span(seconds) {
  if (seconds < HOUR_S) return `${Math.floor(seconds / MINUTE_S)}:${pad2(seconds % MINUTE_S)}`;
  if (seconds < DAY_S) return `${Math.floor(seconds / HOUR_S)} h ${pad2(Math.floor((seconds % HOUR_S) / MINUTE_S))} min`;
  return `${Math.floor(seconds / DAY_S)} d ${Math.floor((seconds % DAY_S) / HOUR_S)} h`;
}

// "now", "12 s", "3 min", "2 h 05 min": how long past due, as a person would say it.
function lateness(seconds) {
  if (seconds < 1) return "now";
  if (seconds < MINUTE_S) return `${seconds} s`;
  if (seconds < HOUR_S) return `${Math.floor(seconds / MINUTE_S)} min`;
  return span(seconds);
}

// The SLA's state at `nowMs`: null when there is no claim deadline to show.
export function slaState(sla, nowMs) {
  if (!sla?.claim_due_at) return null;
  const dueMs = parseTime(sla.claim_due_at).getTime();
  // The server's breach is final (never cleared); the clock passing due is the same
  // breach a moment before the server's event says so.
  const breachedMs = sla.breached_at ? parseTime(sla.breached_at).getTime() : null;
  if (breachedMs !== null || nowMs >= dueMs) {
    const since = Math.min(breachedMs ?? dueMs, dueMs);
    return { overdue: true, text: `Overdue ${lateness(Math.max(0, Math.floor((nowMs - since) / 1000)))}` };
  }
  // Rounded up: "Due in 0:01" until the very moment it is due.
  return { overdue: false, text: `Due in ${span(Math.ceil((dueMs - nowMs) / 1000))}` };
}

const exactTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

// The countdown chip, or null. Its words carry the state ("Due in" / "Overdue"), the
// colour only repeats them.
export function slaChip(sla, nowMs) {
  const state = slaState(sla, nowMs);
  if (!state) return null;
  const due = parseTime(sla.claim_due_at);
  return el("time", {
    class: `chip sla ${state.overdue ? "sla-overdue" : "sla-due"}`,
    datetime: sla.claim_due_at,
    title: `Claim due by ${exactTime.format(due)}`,
    dataset: { state: state.overdue ? "overdue" : "due" },
  }, state.text);
}

// Moves a rendered chip on to `nowMs`; says whether it is overdue now.
export function tickSlaChip(chip, sla, nowMs) {
  const state = slaState(sla, nowMs);
  if (!state || !chip) return Boolean(state?.overdue);
  if (chip.textContent !== state.text) chip.textContent = state.text;
  const name = state.overdue ? "overdue" : "due";
  if (chip.dataset.state !== name) {
    chip.dataset.state = name;
    chip.classList.toggle("sla-overdue", state.overdue);
    chip.classList.toggle("sla-due", !state.overdue);
  }
  return state.overdue;
}

// "Tier 2 notified 4 min ago", "Tier 1 (round 2) notified just now"; the "ago" is a
// <time data-ago> that the page's timer keeps current. Tier 0 of round 1 is the
// notification at create: the card's own age already says when, so no line for it.
export function lastTierLine(sla) {
  const last = sla?.last_tier;
  if (!last || (last.tier === 0 && last.round === 1)) return null;
  const round = last.round > 1 ? ` (round ${last.round})` : "";
  return el("p", { class: "last-tier" }, `Tier ${last.tier}${round} notified `, timeAgo(last.at, "last-tier-age"));
}

// A later word about the same hand-off's SLA, kept against what the card already knows:
// a fetch that left before an event may answer after it, and must not undo it.
export function mergeSla(known, fresh) {
  if (fresh === undefined) return known;
  if (!known || !fresh) return fresh ?? known ?? null;
  return {
    ...fresh,
    breached_at: fresh.breached_at ?? known.breached_at ?? null,
    last_tier: laterTier(known.last_tier, fresh.last_tier),
  };
}

// Within one card's life (one release count) tiers only move forward: round, then tier.
// On a tie, b.
function laterTier(a, b) {
  if (!a || !b) return b ?? a ?? null;
  if (a.round !== b.round) return a.round > b.round ? a : b;
  return a.tier > b.tier ? a : b;
}

// The card's SLA after a handoff_tier_notified event: that tier, at the page's now.
export function withTierNotified(sla, { tier, round }, atIso) {
  const base = sla ?? { policy_id: null, claim_due_at: null, breached_at: null, last_tier: null };
  // A tie keeps what the card knew: a replayed event must not make an old tier "just now".
  return { ...base, last_tier: laterTier({ tier, round, at: atIso }, base.last_tier) };
}

// The card's SLA after a handoff_sla_breached event.
export function withBreach(sla, { claim_due_at: due }) {
  const base = sla ?? { policy_id: null, claim_due_at: due, breached_at: null, last_tier: null };
  const claimDue = base.claim_due_at ?? due;
  return { ...base, claim_due_at: claimDue, breached_at: base.breached_at ?? due ?? claimDue };
}

// For "Due first": the deadline in ms, or Infinity (no deadline sorts last).
export function dueMs(item) {
  const due = item.sla?.claim_due_at;
  return due ? parseTime(due).getTime() : Number.POSITIVE_INFINITY;
}
