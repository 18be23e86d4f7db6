"""The page itself: how it is served, signing in and out, the bell, keyboard, zoom, colour
scheme, and user text that stays text. One replica is enough for these."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from server.inbox_page.routes import ASSETS_DIR, PAGE_FILE
from tests.conftest import BatonProcesses

from .conftest import LIVE_MS, OUTLOOK, PRINTER, QUIET_ENV, VPN, Acme, Cluster, Inboxes, token_of

# Ways a script could turn data into markup; the page builds every node itself instead.
HTML_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment")


@pytest.fixture
def cluster(baton: BatonProcesses) -> Cluster:
    web = baton.serve(env=QUIET_ENV)
    return Cluster(baton, web, web)


def page_sources() -> dict[str, str]:
    files = [PAGE_FILE, *ASSETS_DIR.rglob("*.js"), *ASSETS_DIR.rglob("*.css")]
    return {path.name: path.read_text() for path in files}


async def test_the_page_is_served_with_a_strict_policy_and_needs_nothing_from_elsewhere(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.web1.base_url) as client:
        page = await client.get("/inbox")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"):
            assert rule in policy
        assert "unsafe" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"

        assets = re.findall(r'(?:src|href)="(/inbox/assets/[^"]+)"', page.text)
        assert len(assets) == 3  # the icon, the stylesheet, the module
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert response.headers["x-content-type-options"] == "nosniff"
        module = await client.get("/inbox/assets/js/main.js")
        assert module.headers["content-type"].startswith("text/javascript")

    sources = page_sources()
    html = sources[PAGE_FILE.name]
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/inbox/assets/js/main.js">']
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)
    for name, text in sources.items():
        assert not re.search(r"https?://", text), f"{name} reaches outside Baton"
        assert not HTML_SINKS.search(text), f"{name} parses strings as HTML"


async def test_a_link_token_is_kept_for_the_tab_and_taken_out_of_the_address_bar(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    dana = await inboxes.open(cluster.web1, acme.dana)
    token = token_of(acme.dana)
    assert dana.page.url == f"{cluster.web1.base_url}/inbox"
    assert await dana.page.evaluate("sessionStorage.getItem('baton.token')") == token
    await expect(dana.page.locator("#who")).to_have_text("Dana Okafor · owner")

    await dana.page.reload()
    await expect(dana.connection).to_have_attribute("data-state", "live")
    await expect(dana.page.locator("#sign-in")).to_be_hidden()
    assert token not in cluster.web1.log()  # never in a URL the server saw


async def test_a_pasted_token_signs_in_and_a_refused_one_is_explained(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    sam = await inboxes.open(cluster.web1, acme.sam, sign_in=False)
    page = sam.page
    token_field = page.get_by_label("Your Baton token")
    await expect(token_field).to_be_focused()

    await token_field.fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("That token was not accepted")

    await token_field.fill(token_of(acme.sam))
    await token_field.press("Enter")  # the form submits from the keyboard too
    await expect(sam.connection).to_have_attribute("data-state", "live")
    await expect(page.locator("#who")).to_have_text("Sam Reyes · admin")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('baton.token')") is None


async def test_text_from_users_is_shown_as_text_never_as_markup(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    eli = await inboxes.open(cluster.web1, acme.eli)
    summary = '<img src=x onerror="window.pwned = 1">Printer offline'
    notes = "<script>window.pwned = 2</script><b>bold?</b>"
    await acme.escalate({**PRINTER, "problem_summary": summary}, engineer_notes=notes)

    card = eli.card("Printer offline")
    await expect(card.locator(".card-title")).to_have_text(summary, timeout=LIVE_MS)
    await expect(card.locator(".notes-text")).to_have_text(notes)
    await expect(card.locator(".byline")).to_contain_text("Escalated by Tess Tran")  # details loaded too
    assert await card.locator("img, script, b").count() == 0
    assert await eli.page.evaluate("window.pwned") is None


async def test_the_bell_counts_unread_notifications_and_marks_them_read(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    dana = await inboxes.open(cluster.web1, acme.dana)
    bell = dana.page.locator("#bell-button")
    badge = dana.page.locator("#bell-count")
    await expect(badge).to_be_hidden()

    await acme.escalate(OUTLOOK, priority="urgent")
    await acme.escalate(VPN)
    await expect(badge).to_have_text("2", timeout=LIVE_MS)
    await expect(bell).to_have_attribute("aria-label", "Notifications, 2 unread")

    await bell.click()
    panel = dana.page.locator("#bell-panel")
    await expect(panel.locator(".bell-item.unread")).to_have_count(2)
    await expect(panel).to_contain_text("Tess Tran escalated ticket #48213")
    await panel.locator(".bell-item", has_text="VPN").get_by_role("button", name="Mark read").click()
    await expect(badge).to_have_text("1")
    await panel.get_by_role("button", name="Mark all read").click()
    await expect(badge).to_be_hidden()
    await expect(panel.locator(".bell-item.unread")).to_have_count(0)

    await dana.page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(bell).to_be_focused()


async def test_a_card_can_be_picked_up_with_the_keyboard_alone(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    sam = await inboxes.open(cluster.web1, acme.sam)
    await acme.escalate(VPN, priority="high")
    pick_up = sam.card(VPN["problem_summary"]).get_by_role("button", name="Pick up")
    await expect(pick_up).to_be_visible(timeout=LIVE_MS)

    for _ in range(12):
        if await pick_up.evaluate("button => button === document.activeElement"):
            break
        await sam.page.keyboard.press("Tab")
    await expect(pick_up).to_be_focused()
    outline = await pick_up.evaluate("button => getComputedStyle(button).outlineStyle")
    assert outline != "none", "a focused button must show it"

    await sam.page.keyboard.press("Enter")
    pickup_title = sam.page.locator(".pickup .pickup-title")
    await expect(pickup_title).to_have_text(VPN["problem_summary"])
    await expect(pickup_title).to_be_focused()  # the keyboard follows the card


async def test_the_page_reflows_at_200_percent_zoom_and_follows_a_dark_scheme(
    cluster: Cluster, acme: Acme, inboxes: Inboxes
) -> None:
    # 200 % zoom of a 1280 × 900 window: half the CSS pixels, twice the device pixels.
    eli = await inboxes.open(
        cluster.web1,
        acme.eli,
        viewport={"width": 640, "height": 450},
        device_scale_factor=2,
        color_scheme="dark",
    )
    await acme.escalate(OUTLOOK, priority="urgent", engineer_notes="CEO is travelling and cannot read mail.")
    card = eli.card(OUTLOOK["problem_summary"])
    await expect(card.locator(".ticket")).to_be_visible(timeout=LIVE_MS)

    page = eli.page
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "no sideways scroll"
    )
    queue_box = await page.locator("#queue").bounding_box()
    pickups_box = await page.locator("#pickups").bounding_box()
    assert queue_box and pickups_box and pickups_box["y"] > queue_box["y"], "one column: pick-ups below"
    button_box = await card.get_by_role("button", name="Pick up").bounding_box()
    assert button_box and button_box["x"] + button_box["width"] <= 640

    background = await page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    red, green, blue = (int(part) for part in re.findall(r"\d+", background)[:3])
    assert red + green + blue < 120, f"dark scheme background, got {background}"
