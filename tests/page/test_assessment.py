"""The AI assessment on a card: a placeholder while it is computed, then the assessment,
without a reload; a failed one said plainly, with a retry."""

from __future__ import annotations

import socket

from playwright.async_api import expect

from .conftest import LIVE_MS, OUTLOOK, PRINTER, VPN, WORKER_MS, Acme, Cluster, Inboxes

SUMMARY = OUTLOOK["problem_summary"]


def closed_port() -> int:
    """A local port nothing listens on: an AI endpoint that refuses every connection."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_placeholder_turns_into_the_assessment_without_a_reload(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    dana = await inboxes.open(cluster.web2, acme.dana)
    await dana.page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    # Escalated through the other replica, before any worker runs.
    await acme.escalate(OUTLOOK, priority="urgent", engineer_notes="CEO is travelling and cannot read mail.")
    await acme.escalate(VPN, priority="high", engineer_notes="Drops line up with the rekey interval.")
    await acme.escalate(PRINTER)
    card = dana.card(SUMMARY)
    await expect(card.locator(".assessment-pending")).to_contain_text(
        "Assessment still computing", timeout=LIVE_MS
    )

    cluster.start_worker()
    assessment = card.locator(".assessment-ready")
    await expect(assessment).to_be_visible(timeout=WORKER_MS)
    for heading in ("What we know", "Likely cause", "Suggested steps"):
        await expect(assessment.get_by_role("heading", name=heading)).to_be_visible()
    await expect(assessment.locator(".confidence")).to_have_text("Confidence: low")  # the offline assessor
    await expect(assessment.locator("ul li").first).to_contain_text(SUMMARY)
    await expect(card.locator(".assessment-pending")).to_have_count(0)
    assert await dana.page.evaluate("window.loadedOnce") is True

    await expect(dana.page.locator(".assessment-ready")).to_have_count(3, timeout=WORKER_MS)
    # Urgent work first, whatever its age.
    await expect(dana.page.locator(".card-title")).to_have_text(
        [OUTLOOK["problem_summary"], VPN["problem_summary"], PRINTER["problem_summary"]]
    )
    await dana.page.set_viewport_size({"width": 1360, "height": 1280})  # room for the whole queue
    await dana.screenshot("inbox.png")


async def test_a_failed_assessment_is_said_plainly_and_can_be_run_again(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    unreachable_ai = cluster.start_worker(
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{closed_port()}",
        BATON_AI_MAX_RETRIES="0",
        BATON_AI_TIMEOUT_S="2",
    )
    sam = await inboxes.open(cluster.web1, acme.sam)
    await acme.escalate(VPN, priority="high")

    card = sam.card(VPN["problem_summary"])
    failed = card.locator(".assessment-failed")
    await expect(failed).to_contain_text("AI assessment failed", timeout=WORKER_MS)

    # The AI is reachable again (here: a worker with the offline assessor).
    unreachable_ai.stop()
    cluster.start_worker()
    await failed.get_by_role("button", name="Try the assessment again").click()
    await expect(card.locator(".assessment-ready")).to_be_visible(timeout=WORKER_MS)
    await expect(card.locator(".assessment-failed")).to_have_count(0)
