"""The claim SLA on the cards, in the real browser against real replicas and a worker
running the tier engine: the countdown ticks, the breach and each tier notified show up
without a reload, and "Due first" sorts by the deadline (SPEC second edition,
"Escalation policies and SLA")."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Locator, expect

from .conftest import LIVE_MS, OUTLOOK, PRINTER, VPN, Acme, Cluster, Inboxes, InboxPage, SocketGate

# Seconds-long waits, so a test sees the whole life of an SLA. Five seconds (not fewer)
# leaves a loaded two-core box time to deliver the card and still show the countdown
# move at least once before it runs out.
CLAIM_SLA_S = 5
SECOND_TIER_AFTER_S = 2
# The server's breach reaches the page within a second of due (SPEC), plus delivery.
BREACH_MS = CLAIM_SLA_S * 1000 + LIVE_MS
DUE_IN = re.compile(r"^Due in 0:0(\d)$")
OUTLOOK_S, VPN_S, PRINTER_S = (str(session["problem_summary"]) for session in (OUTLOOK, VPN, PRINTER))
PARKED = "Parked: user out until Monday"
TIER_1_JUST_NOTIFIED = re.compile(r"^Tier 1 notified (just now|\d+ s ago)$")
JUST_OVERDUE = re.compile(r"^Overdue (now|\d+ s)$")


async def put_policy(acme: Acme, **body: Any) -> None:
    response = await acme.tenant.put(f"/escalation-policies/{uuid.uuid4()}", {"name": "Seniors", **body})
    assert response.status_code in (200, 201), response.text


def bell_tier(after_s: int, role: str) -> dict[str, Any]:
    return {"after_s": after_s, "channels": ["bell"], "notify": {"roles": [role]}}


def sla_of(inbox: InboxPage, summary: str) -> Locator:
    return inbox.card(summary).locator(".sla")


async def test_the_countdown_ticks_then_the_breach_and_the_tier_notified_show_without_a_reload(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    await put_policy(
        acme,
        tiers=[bell_tier(0, "engineer"), bell_tier(SECOND_TIER_AFTER_S, "owner")],
        sla_claim_s={"normal": CLAIM_SLA_S},
    )
    cluster.start_worker()
    gate = SocketGate()  # counts the page's sockets: a reload would open a second one
    dana = await inboxes.open(cluster.web1, acme.dana, gate=gate)
    # Sam's laptop clock is an hour slow: his countdown is wrong, but the server's breach
    # and tiers still reach his card the moment they happen (his own clock never would:
    # "Overdue" there can only be the handoff_sla_breached event).
    sam = await inboxes.open(cluster.web2, acme.sam, clock_time=datetime.now(UTC) - timedelta(hours=1))
    summary = OUTLOOK_S

    await acme.escalate(OUTLOOK, priority="normal")

    countdown = sla_of(dana, summary)
    await expect(countdown).to_have_text(DUE_IN, timeout=LIVE_MS)
    first = await countdown.text_content() or ""
    shown = DUE_IN.fullmatch(first)
    assert shown, first
    seconds_left = int(shown.group(1))
    assert 1 <= seconds_left <= CLAIM_SLA_S, first
    if seconds_left > 1:  # it ticks down, second by second, still "Due in"
        await expect(countdown).to_have_text(re.compile(rf"^Due in 0:0[1-{seconds_left - 1}]$"))
    await expect(countdown).to_have_attribute("data-state", "due")
    await expect(sla_of(sam, summary)).to_have_text(re.compile(r"^Due in 1 h 00 min$"))

    # The second tier tells the owners (Dana) after two seconds; the breach comes at five.
    for inbox in (dana, sam):
        tier = inbox.card(summary).locator(".last-tier")
        await expect(tier).to_have_text(TIER_1_JUST_NOTIFIED, timeout=BREACH_MS)
        await expect(sla_of(inbox, summary)).to_have_text(JUST_OVERDUE, timeout=BREACH_MS)
        await expect(sla_of(inbox, summary)).to_have_attribute("data-state", "overdue")
        await expect(inbox.card(summary)).to_have_attribute("data-sla", "overdue")
    # Dana's clock is right: her "overdue for" keeps counting, and so does the tier's age.
    await expect(sla_of(dana, summary)).to_have_text(re.compile(r"^Overdue [1-9]\d* s$"))
    tier_age = dana.card(summary).locator(".last-tier")
    await expect(tier_age).to_have_text(re.compile(r"^Tier 1 notified [1-9]\d* s ago$"))
    await expect(dana.page.locator("#announcer")).to_have_text(f"Overdue, not picked up: {summary}")
    await expect(dana.page.locator("#bell-count")).to_have_text("1")  # tier 1's bell
    assert len(gate.connections) == 1, "the page was reloaded or reconnected"
    await dana.screenshot("sla-overdue.png")

    # What the server says is what the cards said.
    response = await acme.tenant.client.get("/api/v1/queue", headers=acme.dana.headers)
    (item,) = [item for item in response.json()["items"] if item["problem_summary"] == summary]
    assert item["sla"]["breached_at"] is not None
    assert item["sla"]["last_tier"]["tier"] == 1


async def test_due_first_puts_the_nearest_deadline_first_and_cards_without_one_last(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    # No SLA for high: an escalation can have tiers and no deadline.
    await put_policy(acme, tiers=[bell_tier(0, "engineer")], sla_claim_s={"normal": 600, "low": 60})
    eli = await inboxes.open(cluster.web1, acme.eli)
    await acme.escalate(VPN, priority="normal")
    await acme.escalate(PRINTER, priority="low")
    await acme.escalate(OUTLOOK, priority="high")
    parked = await acme.tenant.session(acme.tess, problem_summary=PARKED)
    await acme.tenant.handed_off(acme.tess, parked, "park")
    await expect(eli.page.locator(".card")).to_have_count(4, timeout=LIVE_MS)

    await expect(sla_of(eli, VPN_S)).to_have_text(re.compile(r"^Due in (10:00|9:5\d)$"))
    await expect(sla_of(eli, PRINTER_S)).to_have_text(re.compile(r"^Due in (1:00|0:5\d)$"))
    await expect(sla_of(eli, OUTLOOK_S)).to_have_count(0)
    await expect(sla_of(eli, PARKED)).to_have_count(0)
    # Newest: priority first, then the newest, as before.
    titles = eli.page.locator(".card .card-title")
    await expect(titles).to_have_text([OUTLOOK_S, PARKED, VPN_S, PRINTER_S])

    due_first = eli.page.get_by_role("button", name="Due first")
    await due_first.click()
    await expect(due_first).to_have_attribute("aria-pressed", "true")
    await expect(eli.page.get_by_role("button", name="Newest")).to_have_attribute("aria-pressed", "false")
    # Due first: the nearest deadline first; no deadline last, in the usual order.
    await expect(titles).to_have_text([PRINTER_S, VPN_S, OUTLOOK_S, PARKED])

    # A new card takes its place by its deadline, live.
    await acme.escalate({**PRINTER, "problem_summary": "Scanner to e-mail fails"}, priority="low")
    await expect(eli.card("Scanner to e-mail fails").locator(".sla")).to_be_visible(timeout=LIVE_MS)
    await expect(titles.nth(1)).to_have_text("Scanner to e-mail fails")

    # The choice outlives a reload; "Newest" brings the usual order back.
    await eli.page.reload()
    await expect(eli.page.get_by_role("button", name="Due first")).to_have_attribute("aria-pressed", "true")
    await expect(titles.first).to_have_text(PRINTER_S)
    await eli.page.get_by_role("button", name="Newest").click()
    await expect(titles.first).to_have_text(OUTLOOK_S)
