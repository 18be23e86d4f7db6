"""The pick-up page in a real headless Chromium on a phone-sized screen: the link from the
e-mail opens a page that fits, its button picks the hand-off up (the browser's own
Origin, cookie and form, nothing faked), and the briefing shows once it is written,
with no script and no policy violation."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio
from playwright.async_api import Browser, Page

import pickup_links
from tests.api.conftest import next_inbox_event
from tests.conftest import TEST_JWT_SECRET, BatonProcesses
from tests.page.conftest import SCRATCH_SCREENSHOTS, browser

from .conftest import Acme, Web, handoff_row, start_worker

__all__ = ["browser"]  # the page tests' Chromium

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
WORKER_MS = 30_000


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    context = await browser.new_context(**PHONE, color_scheme="light")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page, problems
    await context.close()


async def _fits(page: Page) -> None:
    width: Any = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["viewport"]["width"], f"the page scrolls sideways on a phone ({width} px)"


async def test_on_a_phone_the_emails_link_picks_up_and_then_shows_the_briefing(
    baton: BatonProcesses,
    web: Web,
    acme: Acme,
    db: asyncpg.Connection,
    inbox_redis: redis.asyncio.Redis,
    phone: tuple[Page, list[str]],
) -> None:
    page, problems = phone
    start_worker(baton, web)
    created = await acme.escalate(
        engineer_notes="Tunnel flaps every hour; the ISP says it is us", priority="urgent"
    )
    token = pickup_links.make_token(
        TEST_JWT_SECRET,
        handoff_id=uuid.UUID(created["id"]),
        user_id=acme.dana.id,
        expires_at=int(time.time()) + 3600,
    )

    await page.goto(f"{web.public_url}/pickup/{token}")
    card = page.locator(".pickup-card")
    await card.get_by_text("VPN drops every hour at the branch").wait_for()
    assert "Urgent" in await card.inner_text() and "Escalated by Tess Tran" in await card.inner_text()
    button = page.get_by_role("button", name="Pick up")
    box = await button.bounding_box()
    assert box is not None and box["width"] >= 300 and box["height"] >= 44  # a thumb's target
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") != "rgba(0, 0, 0, 0)"
    await _fits(page)
    SCRATCH_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCRATCH_SCREENSHOTS / "pickup-phone-open.png"), full_page=True)

    await button.tap()
    await page.get_by_text("You picked this up").wait_for()
    row = await handoff_row(db, created["id"])
    assert (row["state"], row["claimed_by"]) == ("claimed", acme.dana.id)
    event = await next_inbox_event(inbox_redis, acme.tenant.account_id, "handoff_claimed", 10)
    assert event["claimed_by_id"] == str(acme.dana.id)

    # Written by the worker; the page looks again by itself (a meta refresh, no script).
    await page.locator(".briefing-text").wait_for(timeout=WORKER_MS)
    briefing = await db.fetchval(
        "SELECT briefing FROM session_handoffs WHERE id = $1", uuid.UUID(created["id"])
    )
    assert (await page.locator(".briefing-text").inner_text()).strip() == briefing.strip()
    assert page.url == f"{web.public_url}/pickup/{token}"
    await _fits(page)
    await page.screenshot(path=str(SCRATCH_SCREENSHOTS / "pickup-phone-won.png"), full_page=True)
    assert not problems, "\n".join(problems)
