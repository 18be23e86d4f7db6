"""After a laptop sleeps or its network comes back, the inbox socket may look open and be
dead (a browser never probes an idle websocket): the page opens a fresh one, asking
for what it missed."""

from __future__ import annotations

from playwright.async_api import expect

from .conftest import LIVE_MS, OUTLOOK, VPN, Acme, Cluster, Inboxes, SocketGate


async def test_offline_is_shown_and_back_online_the_page_reconnects_and_catches_up(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    gate = SocketGate()
    dana = await inboxes.open(cluster.web1, acme.dana, gate=gate)
    await dana.page.context.set_offline(True)
    await expect(dana.connection).to_have_attribute("data-state", "offline")
    await expect(dana.connection).to_have_text("Offline")
    gate.go_silent()
    await acme.escalate(VPN)

    await dana.page.context.set_offline(False)

    await expect(dana.card(VPN["problem_summary"])).to_be_visible(timeout=LIVE_MS)
    await expect(dana.connection).to_have_attribute("data-state", "live")
    assert len(gate.connections) == 2


async def test_after_a_sleep_the_page_reconnects_and_catches_up(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    gate = SocketGate()
    sam = await inboxes.open(cluster.web2, acme.sam, gate=gate, install_clock=True)
    gate.go_silent()
    await acme.escalate(OUTLOOK, priority="urgent")

    # The machine sleeps half a minute: every timer of the page fires late, once.
    await sam.page.clock.fast_forward("00:30")

    await expect(sam.card(OUTLOOK["problem_summary"])).to_be_visible(timeout=LIVE_MS)
    await expect(sam.connection).to_have_attribute("data-state", "live")
    assert len(gate.connections) == 2
