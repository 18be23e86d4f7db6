// One hand-off as a card: what a senior needs to decide whether to pick it up.
import { now } from "./clock.js";
import { el, timeAgo } from "./dom.js";
import { lastTierLine, slaChip } from "./sla.js";

export const PRIORITY_LABELS = { urgent: "Urgent", high: "High", normal: "Normal", low: "Low" };
const INTENT_LABELS = { escalate: "Escalation", park: "Parked" };

// A queue item (GET /queue, or a handoff_created event) from a full hand-off.
export function queueItemFrom(handoff) {
  return {
    handoff_id: handoff.id,
    session_id: handoff.session_id,
    intent: handoff.intent,
    problem_summary: handoff.snapshot?.problem_summary ?? null,
    problem_domain: handoff.snapshot?.problem_domain ?? null,
    priority: handoff.priority,
    engineer_notes: handoff.engineer_notes,
    created_at: handoff.created_at,
    sla: handoff.sla ?? null,
  };
}

function chips(item, session) {
  const priority = PRIORITY_LABELS[item.priority] ?? item.priority;
  return el("div", { class: "card-chips" },
    el("span", { class: `chip priority priority-${item.priority}` },
      el("span", { class: "visually-hidden" }, "Priority: "), priority),
    el("span", { class: `chip intent intent-${item.intent}` }, INTENT_LABELS[item.intent] ?? item.intent),
    session?.psa_ticket_id
      ? el("span", { class: "chip ticket", title: "PSA ticket" }, `Ticket #${session.psa_ticket_id}`)
      : null,
    slaChip(item.sla, now()),
    timeAgo(item.created_at),
  );
}

function byline(item, handoff) {
  const parts = [];
  if (handoff) {
    const verb = item.intent === "escalate" ? "Escalated" : "Parked";
    parts.push(`${verb} by ${handoff.handed_off_by.name}`);
  }
  if (item.problem_domain) parts.push(item.problem_domain);
  const snapshot = handoff?.snapshot;
  if (snapshot && Number.isInteger(snapshot.step_count)) {
    parts.push(`${snapshot.step_count} step${snapshot.step_count === 1 ? "" : "s"} tried`);
  }
  if (snapshot?.confidence_tier) parts.push(`session confidence ${snapshot.confidence_tier}`);
  return parts.length ? el("p", { class: "byline" }, parts.join(" · ")) : null;
}

function notes(text) {
  if (!text) return null;
  return el("div", { class: "notes" },
    el("p", { class: "label" }, "Engineer notes"),
    el("p", { class: "notes-text" }, text));
}

const FACTS_SHOWN = 3;

function list(tag, items) {
  return el(tag, {}, items.map((text) => el("li", {}, text)));
}

// The first few facts, the rest one click away: cards stay short enough to scan.
function facts(items) {
  if (items.length <= FACTS_SHOWN + 1) return list("ul", items);
  const rest = items.slice(FACTS_SHOWN);
  return el("div", {},
    list("ul", items.slice(0, FACTS_SHOWN)),
    el("details", { class: "more-facts" }, el("summary", {}, `${rest.length} more`), list("ul", rest)));
}

// The assessment block: honest about each state it can be in.
export function assessmentBlock(handoff, { onRetry } = {}) {
  const assessment = handoff?.assessment;
  if (!assessment || assessment.status === "not_applicable") return null;
  if (assessment.status === "pending") {
    return el("section", { class: "assessment assessment-pending", "aria-busy": "true" },
      el("p", { class: "assessment-title" }, "AI assessment"),
      el("p", { class: "pending-text" }, "Assessment still computing…"),
      el("div", { class: "shimmer", "aria-hidden": "true" }, el("span"), el("span"), el("span")));
  }
  if (assessment.status === "failed") {
    return el("section", { class: "assessment assessment-failed" },
      el("p", { class: "assessment-title" }, "AI assessment failed"),
      el("p", {}, "The AI could not assess this escalation. The notes and the session are all there is for now."),
      onRetry
        ? el("button", { type: "button", class: "quiet-button retry", onclick: onRetry }, "Try the assessment again")
        : null);
  }
  const confidence = assessment.confidence || "unknown";
  return el("section", { class: "assessment assessment-ready" },
    el("div", { class: "assessment-head" },
      el("p", { class: "assessment-title" }, "AI assessment"),
      el("span", { class: `chip confidence confidence-${confidence}` }, `Confidence: ${confidence}`)),
    assessment.summary_prose ? el("p", { class: "summary" }, assessment.summary_prose) : null,
    el("div", { class: "assessment-grid" },
      assessment.what_we_know.length
        ? el("div", {}, el("h4", {}, "What we know"), facts(assessment.what_we_know)) : null,
      assessment.likely_cause
        ? el("div", {}, el("h4", {}, "Likely cause"), el("p", {}, assessment.likely_cause)) : null,
      assessment.suggested_steps.length
        ? el("div", {}, el("h4", {}, "Suggested steps"), list("ol", assessment.suggested_steps)) : null));
}

// card: {item, handoff (GET /handoffs/{id} or null), session (GET /sessions/{id} or null), busy}
export function cardBody(card, { me, onPickUp, onRetry }) {
  const { item, handoff, session } = card;
  const titleId = `title-${item.handoff_id}`;
  const own = handoff && me && handoff.handed_off_by.id === me.id;
  const pickUp = el("button", {
    type: "button",
    class: "primary-button pick-up",
    "aria-describedby": titleId,
    disabled: card.busy || own,
    onclick: () => onPickUp(item.handoff_id),
  }, own ? "Your own hand-off" : card.busy ? "Picking up…" : "Pick up");

  return el("article", { class: "card-body", "aria-labelledby": titleId },
    chips(item, session),
    el("div", { class: "card-head" },
      el("div", { class: "card-heading" },
        el("h3", { class: "card-title", id: titleId }, item.problem_summary || "No problem summary given"),
        byline(item, handoff),
        lastTierLine(item.sla)),
      pickUp),
    notes(item.engineer_notes),
    assessmentBlock(handoff, { onRetry: onRetry && (() => onRetry(item.handoff_id)) }));
}
