"""Pick up from the e-mail (SPEC second edition, "Acting from anywhere"), end to end: a real
``baton serve`` and ``baton worker``, the e-mails read at the fake SMTP server, and their
links followed and pressed as a phone's browser would.

A GET (twice, as a mail scanner would) claims nothing and asks for nothing; the first
recipient's POST wins, with the briefing once it is written; a second recipient loses
with who and when; every link that is expired, changed, of a deactivated recipient, or
pressed without the page's token or from another origin is refused and nothing is done.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import httpx
import redis.asyncio

import pickup_links
from inbox import keys
from tests.actors.conftest import eventually, put_policy, tier
from tests.api.conftest import inbox_events, new_tenant, next_inbox_event
from tests.conftest import TEST_JWT_SECRET, BatonProcesses
from tests.fakes.smtp import FakeSmtp, Received

from .conftest import Acme, Browser, Web, address, assert_untouched, handoff_row, start_worker

WAIT_S = 45
CSP_SCRIPT_FREE = ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'")


async def _mail_to(smtp: FakeSmtp, person: Any, count: int = 1) -> list[Received]:
    async def arrived() -> list[Received]:
        found = [m for m in smtp.messages() if address(person) in m.rcpt_tos]
        return found if len(found) >= count else []

    found: list[Received] = await eventually(arrived, WAIT_S, f"{count} e-mail(s) to {person.name}")
    return found


def _only_link(web: Web, mail: Received) -> str:
    [token] = web.link_tokens(mail.body)
    return token


def _claimed_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == "handoff_claimed"]


def _assert_page(response: httpx.Response, status: int, *texts: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert all(rule in policy for rule in CSP_SCRIPT_FREE) and "script-src" not in policy
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "<script" not in response.text
    for text in texts:
        assert text in response.text, f"{text!r} not on the page:\n{response.text}"
    return response.text


async def test_a_scanners_gets_change_nothing_the_first_press_wins_and_the_second_loses_with_who_and_when(
    baton: BatonProcesses,
    web: Web,
    acme: Acme,
    smtp: FakeSmtp,
    db: asyncpg.Connection,
    inbox_redis: redis.asyncio.Redis,
    browsers: Any,
) -> None:
    worker = start_worker(baton, web, smtp.env())
    created = await acme.escalate(engineer_notes="Tunnel flaps; the ISP says it is us", priority="high")
    handoff_id = created["id"]
    [to_dana] = await _mail_to(smtp, acme.dana)
    [to_sam] = await _mail_to(smtp, acme.sam)

    # Each e-mail carries one link, its own: signed for its recipient and this hand-off.
    dana_link, sam_link = _only_link(web, to_dana), _only_link(web, to_sam)
    assert dana_link != sam_link
    for token, person in ((dana_link, acme.dana), (sam_link, acme.sam)):
        link = pickup_links.read_token(TEST_JWT_SECRET, token)
        assert (str(link.handoff_id), link.user_id) == (handoff_id, person.id)
    assert "(this link is yours alone and works for 24 hours):" in to_dana.body

    # A mail scanner fetches the link, twice: the page, and nothing else happens.
    async with httpx.AsyncClient(base_url=web.public_url) as scanner:
        for _ in range(2):
            page = _assert_page(
                await scanner.get(f"/pickup/{dana_link}"),
                200,
                "VPN drops every hour at the branch",
                "High",
                "Escalated by Tess Tran",
                "Tunnel flaps; the ISP says it is us",
                '<button type="submit" class="primary-button pickup-button">Pick up</button>',
            )
            assert '<form class="pickup-form" method="post">' in page
    await assert_untouched(db, handoff_id)
    assert _claimed_events(await inbox_events(inbox_redis, acme.tenant.account_id)) == []

    # Both seniors open their e-mail at once; Dana presses first.
    dana, sam = browsers(), browsers()
    _assert_page(await dana.open(dana_link), 200, "Pick up")
    _assert_page(await sam.open(sam_link), 200, "Pick up")
    assert dana.form_token and sam.form_token and dana.form_token != sam.form_token
    assert dana.http.cookies.get("baton_pickup")
    stream_before = await inbox_redis.xrevrange(keys.stream(acme.tenant.account_id), count=1)

    won = await dana.press_pick_up(dana_link)
    page = _assert_page(won, 200, "You picked this up", "It is yours.", "Open the inbox")
    row = await handoff_row(db, handoff_id)
    assert (row["state"], row["claimed_by"]) == ("claimed", acme.dana.id)
    # The inbox hears it exactly as for an API claim.
    after = stream_before[0][0].decode() if stream_before else "0-0"
    claimed = await next_inbox_event(
        inbox_redis, acme.tenant.account_id, "handoff_claimed", WAIT_S, after=after, log=web.process.log
    )
    assert {
        name: claimed[name] for name in ("handoff_id", "session_id", "claimed_by_id", "claimed_by_name")
    } == {
        "handoff_id": handoff_id,
        "session_id": created["session_id"],
        "claimed_by_id": str(acme.dana.id),
        "claimed_by_name": "Dana Okafor",
    }
    if "The briefing is on its way" in page:
        # The page looks again with the link's own token until the briefing is there.
        assert f'<meta http-equiv="refresh" content="4; url=/pickup/{dana_link}">' in page

    # Sam presses a moment later: lost, saying who and when.
    lost = await sam.press_pick_up(sam_link)
    claimed_at = row["claimed_at"]
    _assert_page(
        lost,
        409,
        "Already picked up by Dana Okafor at ",
        f"{claimed_at:%H:%M} UTC",
        f'datetime="{claimed_at.isoformat()}"',
    )
    assert (await handoff_row(db, handoff_id))["claimed_by"] == acme.dana.id
    # Sam's link still shows who has it.
    taken = _assert_page(await sam.open(sam_link), 200, "Already picked up by Dana Okafor")
    assert 'name="csrf"' not in taken

    # The briefing is written; Dana's link shows it (and stops looking again).
    await next_inbox_event(
        inbox_redis, acme.tenant.account_id, "handoff_briefing_ready", WAIT_S, log=worker.log
    )
    briefing = await db.fetchval("SELECT briefing FROM session_handoffs WHERE id = $1", uuid.UUID(handoff_id))
    page = _assert_page(await dana.open(dana_link), 200, "You picked this up", "Briefing")
    assert _html_text(briefing) in page and 'http-equiv="refresh"' not in page

    # Pressing again after winning says won again; the inbox heard one claim.
    _assert_page(await dana.press_pick_up(dana_link), 200, "You picked this up", _html_text(briefing))
    assert len(_claimed_events(await inbox_events(inbox_redis, acme.tenant.account_id))) == 1

    # The link is a claim capability: no log line holds one.
    for process in (web.process, worker):
        log = process.log()
        assert dana_link not in log and sam_link not in log
    assert "/pickup/[redacted]" in web.process.log()


def _html_text(text: str) -> str:
    from html import escape

    return escape(text)


async def test_the_link_of_a_later_tier_picks_up_as_its_recipient_too(
    baton: BatonProcesses, web: Web, acme: Acme, smtp: FakeSmtp, db: asyncpg.Connection, browsers: Any
) -> None:
    """Tier e-mails (and the reminder) are the same composer's: each carries its link."""
    await put_policy(
        acme.tenant,
        {"tiers": [tier(0, ["email"], roles=["engineer"]), tier(1, ["email"], user_ids=[str(acme.dana.id)])]},
    )
    start_worker(baton, web, smtp.env())
    created = await acme.escalate()
    [first] = await _mail_to(smtp, acme.sam)
    [still_open] = await _mail_to(smtp, acme.dana)
    assert first.subject.startswith("New escalation") and still_open.subject.startswith("Still open")
    assert pickup_links.read_token(TEST_JWT_SECRET, _only_link(web, first)).user_id == acme.sam.id

    dana = browsers()
    token = _only_link(web, still_open)
    await dana.open(token)
    _assert_page(await dana.press_pick_up(token), 200, "You picked this up")
    assert (await handoff_row(db, created["id"]))["claimed_by"] == acme.dana.id


def _link(acme: Acme, person: Any, handoff_id: str, *, expires_at: int | None = None) -> str:
    return pickup_links.make_token(
        TEST_JWT_SECRET,
        handoff_id=uuid.UUID(handoff_id),
        user_id=person.id,
        expires_at=expires_at if expires_at is not None else int(time.time()) + 3600,
    )


def _with_bytes(token: str, start: int, replacement: bytes) -> str:
    import base64

    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[start : start + len(replacement)] = replacement
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


async def test_expired_changed_and_unknown_links_are_refused_and_claim_nothing(
    web: Web, acme: Acme, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis, browsers: Any
) -> None:
    first = await acme.escalate()
    second = await acme.escalate()
    good = _link(acme, acme.dana, first["id"])
    refusals = {
        # Made by Baton, a day and a second ago: expired.
        "expired": (_link(acme, acme.dana, first["id"], expires_at=int(time.time()) - 1), 410, "expired"),
        # The first hand-off's link with the second's id written in: the signature no longer fits.
        "another hand-off": (_with_bytes(good, 1, uuid.UUID(second["id"]).bytes), 404, "not one Baton made"),
        "a changed signature": (
            good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1],
            404,
            "not one Baton made",
        ),
        "another recipient": (_with_bytes(good, 17, acme.sam.id.bytes), 404, "not one Baton made"),
        "a later expiry": (_with_bytes(good, 33, (2**32 - 1).to_bytes(4, "big")), 404, "not one Baton made"),
        "not a link": ("nothing-to-see-here", 404, "not one Baton made"),
        "a very long path": ("A" * 5000, 404, "not one Baton made"),
    }
    browser = browsers()
    await browser.open(good)  # the page's own cookie and a valid form token, for the POSTs below
    for what, (token, status, words) in refusals.items():
        page = await browser.http.get(f"/pickup/{token}")
        _assert_page(page, status, words)
        assert 'name="csrf"' not in page.text, what
        pressed = await browser.press_pick_up(token)
        _assert_page(pressed, status, words)

    # Signed (as only a holder of the secret could), but naming nobody Baton knows, or a
    # hand-off of another account: no page, and no page token that a press could bring.
    globex = await new_tenant(db, acme.tenant.client, "Globex")
    globex_tech = await globex.user("technician")
    await globex.user("owner")
    theirs = await globex.handed_off(globex_tech, await globex.session(globex_tech), "escalate")
    for token in (
        pickup_links.make_token(
            TEST_JWT_SECRET, handoff_id=uuid.UUID(first["id"]), user_id=uuid.uuid4(), expires_at=2**31
        ),
        _link(acme, acme.dana, theirs["id"]),
    ):
        _assert_page(await browser.http.get(f"/pickup/{token}"), 404, "not one Baton made")
        _assert_page(await browser.press_pick_up(token), 403, "nothing was done")

    for handoff in (first, second, theirs):
        await assert_untouched(db, handoff["id"])
    assert _claimed_events(await inbox_events(inbox_redis, acme.tenant.account_id)) == []


async def test_a_superseded_or_resolved_hand_off_is_lost_saying_why(
    web: Web, acme: Acme, db: asyncpg.Connection, browsers: Any
) -> None:
    session_id = await acme.tenant.session(acme.tess, problem_summary="Printer offline")
    park = await acme.tenant.handed_off(acme.tess, session_id, "park")
    resolved = await acme.escalate()
    # Sam has both pages open while they still can be picked up.
    pages = {}
    for handoff in (park, resolved):
        token = _link(acme, acme.sam, handoff["id"])
        pages[handoff["id"]] = (token, browser := browsers())
        _assert_page(await browser.open(token), 200, "Pick up")
    # Then the parked session is escalated after all (the park is superseded), and the
    # owner resolves the other escalation.
    escalation = await acme.tenant.handed_off(acme.tess, session_id, "escalate")
    response = await acme.tenant.client.post(
        f"/api/v1/handoffs/{resolved['id']}/resolve", json={"outcome": "resolved"}, headers=acme.dana.headers
    )
    assert response.status_code == 200, response.text

    for handoff, words in ((park, "superseded by a newer one"), (resolved, "was resolved")):
        token, browser = pages[handoff["id"]]
        _assert_page(await browser.press_pick_up(token), 409, words)
        shown = _assert_page(await browser.open(token), 200, words)
        assert 'name="csrf"' not in shown
    assert (await handoff_row(db, park["id"]))["state"] == "superseded"
    row = await handoff_row(db, resolved["id"])
    assert (row["state"], row["claimed_by"]) == ("resolved", None)
    assert (await handoff_row(db, escalation["id"]))["claimed_by"] is None


async def test_a_recipient_deactivated_since_the_email_can_no_longer_pick_up(
    web: Web, acme: Acme, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis, browsers: Any
) -> None:
    created = await acme.escalate()
    token = _link(acme, acme.sam, created["id"])
    sam = browsers()
    await sam.open(token)  # the page as it was while Sam could still act
    assert sam.form_token

    response = await acme.tenant.put(
        f"/users/{acme.sam.id}",
        {"email": address(acme.sam), "name": "Sam Reyes", "account_role": "engineer", "is_active": False},
    )
    assert response.status_code == 200, response.text

    _assert_page(await sam.press_pick_up(token), 403, "can no longer pick hand-offs up")
    _assert_page(await sam.http.get(f"/pickup/{token}"), 403, "can no longer pick hand-offs up")
    await assert_untouched(db, created["id"])
    assert _claimed_events(await inbox_events(inbox_redis, acme.tenant.account_id)) == []


async def test_a_press_without_the_pages_token_or_from_another_origin_does_nothing(
    web: Web, acme: Acme, db: asyncpg.Connection, inbox_redis: redis.asyncio.Redis, browsers: Any
) -> None:
    created = await acme.escalate()
    token = _link(acme, acme.dana, created["id"])
    other_token = _link(acme, acme.dana, (await acme.escalate())["id"])
    dana = browsers()
    await dana.open(token)
    good_field = dana.form_token
    assert good_field

    async def press(**changes: Any) -> httpx.Response:
        dana.form_token = changes.pop("field", good_field)
        cookies = changes.pop("cookies", None)
        if cookies is not None:
            async with httpx.AsyncClient(base_url=web.public_url, cookies=cookies) as bare:
                headers = {"Origin": web.public_url, "Sec-Fetch-Site": "same-origin"}
                return await bare.post(
                    f"/pickup/{token}", data={"csrf": dana.form_token or ""}, headers=headers
                )
        return await dana.press_pick_up(token, **changes)

    other = browsers()
    await other.open(other_token)
    refused = {
        "no form token": await press(field=None),
        "a made-up form token": await press(field="A" * 43),
        "another link's form token": await press(field=other.form_token),
        "no page cookie (a cross-site POST: SameSite=Strict keeps it home)": await press(cookies={}),
        "another browser's cookie": await press(cookies={"baton_pickup": "B" * 22}),
        "a foreign Origin": await press(origin="https://attacker.example"),
        "a look-alike Origin": await press(origin=f"{web.public_url}.attacker.example"),
        "a cross-site fetch": await press(site="cross-site"),
        "a same-site (not same-origin) fetch": await press(site="same-site"),
        "Origin null": await press(origin="null"),
    }
    for what, response in refused.items():
        _assert_page(response, 403, "did not come from the pick-up page, so nothing was done")
        assert "You picked this up" not in response.text, what
    # A body no page of ours sends: refused before it is read whole.
    oversized = await dana.http.post(
        f"/pickup/{token}",
        data={"csrf": good_field, "x": "y" * 4096},
        headers={"Origin": web.public_url, "Sec-Fetch-Site": "same-origin"},
    )
    assert oversized.status_code == 413, oversized.text
    # No Origin and no Referer at all (not a browser's form): refused as well.
    bare = await dana.http.post(f"/pickup/{token}", data={"csrf": good_field}, headers={"Origin": ""})
    assert bare.status_code == 403
    await assert_untouched(db, created["id"])
    assert _claimed_events(await inbox_events(inbox_redis, acme.tenant.account_id)) == []

    # The same browser, page and token, from its own origin: it works (and a Referer
    # alone, without Origin, names the origin as well).
    dana.form_token = good_field
    response = await dana.http.post(
        f"/pickup/{token}", data={"csrf": good_field}, headers={"Referer": f"{web.public_url}/pickup/{token}"}
    )
    _assert_page(response, 200, "You picked this up")
    assert (await handoff_row(db, created["id"]))["claimed_by"] == acme.dana.id


async def test_presses_count_against_the_recipients_write_rate(baton: BatonProcesses, acme: Acme) -> None:
    """A replica allowing one write a minute: the press is Dana's write, as an API claim is."""
    from cli.processes import free_port

    created = await acme.escalate()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = {"BATON_PUBLIC_URL": public_url, "BATON_RATE_LIMIT_WRITES_PER_MINUTE": "1"}
    strict = Web(baton.serve(env=env, port=port), public_url)
    token = _link(acme, acme.dana, created["id"])
    browser = Browser(strict)
    try:
        await browser.open(token)
        _assert_page(await browser.press_pick_up(token), 200, "You picked this up")
        again = await browser.press_pick_up(token)
        _assert_page(again, 429, "Too many tries")
        assert int(again.headers["retry-after"]) >= 1
    finally:
        await browser.close()


async def test_without_a_public_url_emails_carry_no_link_and_each_process_says_so_once(
    baton: BatonProcesses, web: Web, acme: Acme, smtp: FakeSmtp
) -> None:
    worker = start_worker(baton, web, smtp.env(), BATON_PUBLIC_URL="")
    await acme.escalate()
    await acme.escalate()
    mails = await _mail_to(smtp, acme.dana, count=2)
    for mail in mails:
        assert "/pickup/" not in mail.body and "Reason:" in mail.body
    assert worker.log().count("pick-up links are off") == 1
    quiet = baton.serve(env={"BATON_PUBLIC_URL": ""})
    assert quiet.log().count("pick-up links are off") == 1
    assert "pick-up links are off" not in web.process.log()


async def test_the_pick_up_routes_are_not_in_the_api_document(web: Web) -> None:
    """HTML for people, as /inbox is: not part of the API's OpenAPI document."""
    async with httpx.AsyncClient(base_url=web.public_url) as client:
        document = (await client.get("/schema/openapi.json")).json()
    assert document["paths"] and not [path for path in document["paths"] if "pickup" in path]
