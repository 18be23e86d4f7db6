"""The pick-up page's HTML: one small server-rendered page per answer, in the inbox's look.

No script at all (the policy allows none): the form posts by itself, and a won page whose
briefing is still being written re-reads the link's own page with a meta refresh. Every
text from users (summary, notes, names, the briefing) passes ``html.escape``.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from pickup_links import PATH_PREFIX
from server.handoffs.claim import FINAL_STATE_DETAIL
from server.handoffs.pickup import Look, Lost
from server.schemas.handoffs import HandoffOut

BRIEFING_REFRESH_S = 4
INBOX_PATH = "/inbox"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="robots" content="noindex, nofollow">
  {refresh}<title>{title} · Baton</title>
  <link rel="icon" href="/inbox/assets/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/inbox/assets/inbox.css">
  <link rel="stylesheet" href="/inbox/assets/pickup.css">
</head>
<body class="pickup-body">
  <header class="topbar">
    <div class="brand">
      <svg class="brand-mark" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
        <path d="M4 20 20 4" /><circle cx="20" cy="4" r="2.5" />
      </svg>
      <span class="brand-name">Baton</span>
      <span class="brand-page">pick up</span>
    </div>
  </header>
  <main class="pickup-main" id="main">
{main}
  </main>
</body>
</html>
"""


def page(title: str, main: str, *, refresh_path: str | None = None) -> bytes:
    refresh = (
        f'<meta http-equiv="refresh" content="{BRIEFING_REFRESH_S}; url={escape(refresh_path)}">\n  '
        if refresh_path
        else ""
    )
    return _PAGE.format(title=escape(title), main=main, refresh=refresh).encode("utf-8")


def _when(at: datetime) -> str:
    shown = f"{at:%H:%M} UTC on {at.day} {at:%b %Y}"
    return f'<time datetime="{escape(at.isoformat())}">{shown}</time>'


def _summary(handoff: HandoffOut) -> str:
    summary = handoff.snapshot.get("problem_summary") if isinstance(handoff.snapshot, dict) else None
    return str(summary) if summary else "An active session"


def _card(handoff: HandoffOut, inner: str) -> str:
    priority = escape(handoff.priority)
    intent = "Escalation" if handoff.intent == "escalate" else "Parked"
    notes = (handoff.engineer_notes or "").strip()
    lines = [
        f'    <article class="card pickup-card" data-priority="{priority}" aria-labelledby="pickup-title">',
        '      <div class="card-chips">',
        f'        <span class="chip priority-{priority}">{escape(handoff.priority.capitalize())}</span>',
        f'        <span class="chip intent-{escape(handoff.intent)}">{intent}</span>',
        "      </div>",
        f'      <h1 class="card-title" id="pickup-title">{escape(_summary(handoff))}</h1>',
        f'      <p class="byline">Escalated by {escape(handoff.handed_off_by.name)}, '
        f"{_when(handoff.created_at)}</p>",
    ]
    if notes:
        lines.append(
            '      <div class="notes"><p class="label">Reason</p>'
            f'<p class="notes-text">{escape(notes)}</p></div>'
        )
    return "\n".join([*lines, inner, "    </article>"])


def _notice(kind: str, text: str) -> str:
    role = "alert" if kind != "won" else "status"
    return f'      <p class="pickup-outcome pickup-{kind}" role="{role}">{text}</p>'


def _inbox_link() -> str:
    return f'      <p class="pickup-more"><a href="{INBOX_PATH}">Open the inbox</a></p>'


def open_view(look: Look, form_token: str) -> bytes:
    inner = f"""      <form class="pickup-form" method="post">
        <input type="hidden" name="csrf" value="{escape(form_token)}">
        <button type="submit" class="primary-button pickup-button">Pick up</button>
      </form>
      <p class="pickup-hint">Picking it up tells your team it is yours, {escape(look.caller.name)},
        and asks for your briefing.</p>"""
    return page(f"Pick up: {_summary(look.handoff)}", _card(look.handoff, inner))


def won_view(look: Look, link_token: str) -> bytes:
    """Yours: the briefing, or a note that it is on its way (the page then re-reads itself)."""
    briefing = look.briefing
    claimed_at = look.handoff.claimed_at
    when = f" at {_when(claimed_at)}" if claimed_at else ""
    parts = [_notice("won", f"You picked this up{when}. It is yours.")]
    refresh = None
    if briefing is not None and briefing.briefing_status == "ready":
        parts.append(
            '      <section class="briefing" aria-label="Briefing"><p class="briefing-title">Briefing</p>'
            f'<p class="briefing-text">{escape(briefing.briefing or "The briefing is empty.")}</p></section>'
        )
    elif briefing is not None and briefing.briefing_status == "failed":
        parts.append(
            '      <section class="briefing briefing-error" aria-label="Briefing">'
            "<p>The briefing could not be written; the inbox can ask for it again.</p></section>"
        )
    else:
        refresh = f"{PATH_PREFIX}{link_token}"
        parts.append(
            '      <section class="briefing briefing-pending" aria-label="Briefing" aria-busy="true">'
            '<p class="briefing-title">Briefing</p>'
            '<p class="pending-text">The briefing is on its way; this page looks again every few seconds.</p>'
            "</section>"
        )
    parts.append(_inbox_link())
    return page(
        f"Yours: {_summary(look.handoff)}", _card(look.handoff, "\n".join(parts)), refresh_path=refresh
    )


def lost_view(lost: Lost) -> bytes:
    if lost.claimed_by_name:
        when = f" at {_when(lost.claimed_at)}" if lost.claimed_at else ""
        text = f"Already picked up by {escape(lost.claimed_by_name)}{when}."
    else:
        text = escape(lost.detail)
    inner = "\n".join([_notice("lost", text), _inbox_link()])
    return page(f"Taken: {_summary(lost.handoff)}", _card(lost.handoff, inner))


def taken_by_other(look: Look) -> Lost | None:
    """What a GET shows instead of the form or the win, as the claim would answer: no
    claim can move it any more (superseded, resolved: whoever held it), or someone else
    holds it."""
    handoff = look.handoff
    if handoff.state in FINAL_STATE_DETAIL:
        return Lost(handoff, FINAL_STATE_DETAIL[handoff.state], None, None)
    if look.held_by_caller:
        return None
    if handoff.claimed_by is not None:
        return Lost(handoff, "", handoff.claimed_by.name, handoff.claimed_at)
    if handoff.state != "open":
        return Lost(handoff, "This hand-off can no longer be picked up.", None, None)
    return None


_REFUSALS: dict[str, tuple[str, str]] = {
    "unknown": (
        "Link not valid",
        "This pick-up link is not one Baton made, or it was changed on the way. Open it again "
        "from the e-mail, or pick the hand-off up in the inbox.",
    ),
    "expired": (
        "Link expired",
        "This pick-up link has expired: links work for 24 hours after the e-mail was sent. "
        "The inbox still shows the hand-off if it is open.",
    ),
    "not_allowed": (
        "Not allowed",
        "This link's account can no longer pick hand-offs up: it is inactive or was removed. "
        "Ask an admin of your team.",
    ),
    "own_handoff": ("Your own hand-off", "This is your own hand-off: someone else has to pick it up."),
    "forged": (
        "Nothing was done",
        "This request did not come from the pick-up page, so nothing was done. Open the link "
        "from the e-mail again and press Pick up there.",
    ),
}


def refused_view(reason: str) -> bytes:
    title, text = _REFUSALS[reason]
    main = f"""    <section class="card pickup-card pickup-refused" aria-labelledby="pickup-title">
      <h1 class="card-title" id="pickup-title">{escape(title)}</h1>
      <p class="pickup-outcome pickup-{escape(reason)}" role="alert">{escape(text)}</p>
{_inbox_link()}
    </section>"""
    return page(title, main)


def too_many_view(retry_after_s: int) -> bytes:
    main = f"""    <section class="card pickup-card pickup-refused" aria-labelledby="pickup-title">
      <h1 class="card-title" id="pickup-title">Too many tries</h1>
      <p class="pickup-outcome" role="alert">Too many tries; try again in {retry_after_s} s.</p>
    </section>"""
    return page("Too many tries", main)
