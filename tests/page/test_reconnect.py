"""The page outlives its replica: it says so, comes back, and catches up on what it missed."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from .conftest import LIVE_MS, OUTLOOK, RECONNECT_MS, VPN, Acme, Cluster, Inboxes


async def test_a_page_whose_replica_restarts_reconnects_and_shows_what_it_missed(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    dana = await inboxes.open(cluster.web1, acme.dana)
    await dana.page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    await acme.escalate(VPN, priority="high")
    await expect(dana.card(VPN["problem_summary"])).to_be_visible(timeout=LIVE_MS)

    cluster.web1.kill()
    await expect(dana.connection).to_have_attribute("data-state", "reconnecting")
    await expect(dana.connection).to_have_text("Reconnecting…")

    # While Dana's replica is down, an escalation lands through the other one.
    acme.tenant.client.base_url = cluster.web2.base_url
    await acme.escalate(OUTLOOK, priority="urgent")
    await asyncio.to_thread(cluster.restart_web1)  # same port, as a supervisor would

    await expect(dana.connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    await expect(dana.connection).to_have_text("Live")
    await expect(dana.card(OUTLOOK["problem_summary"])).to_be_visible(timeout=LIVE_MS)
    await expect(dana.page.locator(".card")).to_have_count(2)
    assert await dana.page.evaluate("window.loadedOnce") is True
