"""Seniors on different replicas watch one escalation arrive; the first to pick it up wins."""

from __future__ import annotations

import re
import time

from playwright.async_api import expect

from .conftest import LIVE_MS, OUTLOOK, PRINTER, VPN, WORKER_MS, Acme, Cluster, Inboxes, SocketGate

SUMMARY = OUTLOOK["problem_summary"]


async def test_the_first_senior_to_pick_up_wins_and_every_other_screen_is_told(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    cluster.start_worker()  # writes the winner's briefing
    dana = await inboxes.open(cluster.web1, acme.dana)
    sam = await inboxes.open(cluster.web2, acme.sam)
    # Eli's copy of the claim is late: his screen still offers the card when he clicks.
    eli = await inboxes.open(cluster.web2, acme.eli, gate=SocketGate(hold_back="handoff_claimed"))
    for inbox in (dana, sam, eli):
        await expect(inbox.page.locator("#queue-empty")).to_be_visible()
    # The rest of the morning's queue, untouched by what follows.
    await acme.escalate(VPN, priority="high", engineer_notes="Drops line up with the rekey interval.")
    await acme.escalate(PRINTER)
    for inbox in (dana, sam, eli):
        await expect(inbox.page.locator(".card")).to_have_count(2, timeout=LIVE_MS)

    created_at = time.monotonic()
    await acme.escalate(OUTLOOK, priority="urgent", engineer_notes="CEO is travelling and cannot read mail.")
    for inbox in (dana, sam, eli):
        await expect(inbox.card(SUMMARY)).to_be_visible(timeout=LIVE_MS)
    arrived_s = time.monotonic() - created_at
    assert arrived_s < LIVE_MS / 1000, f"the card took {arrived_s:.2f} s to reach all three screens"
    card = sam.card(SUMMARY)
    await expect(card.locator(".priority")).to_have_text("Priority: Urgent")
    await expect(card.locator(".intent")).to_have_text("Escalation")
    await expect(card.locator(".ticket")).to_have_text("Ticket #48213")
    await expect(card.locator(".notes-text")).to_have_text("CEO is travelling and cannot read mail.")
    await expect(card.locator(".byline")).to_contain_text("Escalated by Tess Tran")
    age = card.locator("time.age")
    await expect(age).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    await expect(age).not_to_have_text(await age.text_content() or "")  # it ticks

    await dana.card(SUMMARY).get_by_role("button", name="Pick up").click()

    # Dana holds it, and its briefing arrives without a reload.
    pickup = dana.page.locator(".pickup", has_text=SUMMARY)
    await expect(pickup).to_be_visible()
    await expect(dana.card(SUMMARY)).to_have_count(0)
    await expect(pickup.locator(".briefing-text")).to_contain_text("Tess Tran escalated", timeout=WORKER_MS)

    # Sam's screen is told who took it, and the card leaves.
    await expect(sam.card(SUMMARY)).to_contain_text("Picked up by Dana Okafor")
    await expect(sam.card(SUMMARY)).to_have_count(0)

    # Eli clicks late: told who won and when, and the card goes.
    await expect(eli.card(SUMMARY)).to_be_visible()
    await eli.card(SUMMARY).get_by_role("button", name="Pick up").click()
    toast = eli.page.locator(".toast-text")
    await expect(toast).to_have_text(re.compile(r"^Already claimed by Dana Okafor (just now|\d+ s ago)$"))
    await expect(eli.card(SUMMARY)).to_have_count(0)
    for inbox in (dana, sam, eli):
        await expect(inbox.page.locator(".card")).to_have_count(2)
    await eli.screenshot("toast.png")
    await dana.screenshot("briefing.png")

    # Dana gives it back: it returns to every queue, and leaves her pick-ups.
    await pickup.get_by_role("button", name="Give back to the queue").click()
    await expect(pickup).to_have_count(0)
    for inbox in (dana, sam, eli):
        await expect(inbox.card(SUMMARY)).to_be_visible(timeout=LIVE_MS)
