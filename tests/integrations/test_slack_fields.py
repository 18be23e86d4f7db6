"""The fields Pick up from Slack adds to the host app's PUTs: a user's ``slack_user_id``
(unique within the account) and a Slack channel's write-only ``signing_secret``.

SPEC "PUT and the new fields": omitted keeps the stored value, ``null`` clears it.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.api.conftest import Tenant, TenantFactory, assert_problem, database_fingerprint
from tests.fakes.chat import FakeWebhooks

SECRET = "8f742231b10e8888abcd99b1ea0d4e0a"


def _user_body(**extra: Any) -> dict[str, Any]:
    return {"email": "dana@example.com", "name": "Dana Okafor", "account_role": "engineer", **extra}


async def _put_user(acme: Tenant, user_id: uuid.UUID, **extra: Any) -> Any:
    return await acme.put(f"/users/{user_id}", _user_body(**extra))


async def test_slack_user_id_is_kept_when_omitted_cleared_by_null_and_checked_for_shape(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    dana = uuid.uuid4()
    created = await _put_user(acme, dana, slack_user_id="U024BE7LH")
    assert created.status_code == 201 and created.json()["slack_user_id"] == "U024BE7LH"
    kept = await _put_user(acme, dana, name="Dana O.")
    assert kept.status_code == 200 and kept.json()["slack_user_id"] == "U024BE7LH"
    cleared = await _put_user(acme, dana, slack_user_id=None)
    assert cleared.status_code == 200 and cleared.json()["slack_user_id"] is None
    assert (await _put_user(acme, dana, slack_user_id="W0ENTERPRISE1")).json()[
        "slack_user_id"
    ] == "W0ENTERPRISE1"

    before = await database_fingerprint(db)
    for bad in ("u024be7lh", "X024BE7LH", "U1", "U" + "A" * 31, "U024 BE7", "<@U024BE7LH>", 42):
        refused = await _put_user(acme, dana, slack_user_id=bad)
        body = assert_problem(refused, 400)
        assert "slack_user_id" in str(body), (bad, body)
    assert await database_fingerprint(db) == before


async def test_a_slack_user_id_another_user_of_the_account_holds_is_409_and_writes_nothing(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme, other = await tenant(), await tenant("Other MSP")
    dana, sam = uuid.uuid4(), uuid.uuid4()
    assert (await _put_user(acme, dana, slack_user_id="U0SHARED")).status_code == 201
    before = await database_fingerprint(db)

    taken = await acme.put(
        f"/users/{sam}", {**_user_body(slack_user_id="U0SHARED"), "email": "sam@example.com"}
    )
    body = assert_problem(taken, 409)
    assert body["detail"].startswith("slack_user_id U0SHARED is already another user's")
    assert await database_fingerprint(db) == before  # not even the new user
    # Dana keeps hers on a PUT of her own, and another account's user may have the same id.
    assert (await _put_user(acme, dana, slack_user_id="U0SHARED")).status_code == 200
    assert (await _put_user(other, uuid.uuid4(), slack_user_id="U0SHARED")).status_code == 201


async def test_a_signing_secret_is_written_never_returned_kept_when_omitted_and_cleared_by_null(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    channel = uuid.uuid4()
    url = "http://127.0.0.1:9/services/T000/B000/x"  # loopback is allowed in tests; never called here

    async def put(**extra: Any) -> Any:
        return await acme.put(f"/channels/{channel}", {"kind": "slack", "url": url, **extra})

    async def stored() -> str | None:
        value: str | None = await db.fetchval(
            "SELECT signing_secret FROM notification_channels WHERE id = $1", channel
        )
        return value

    created = await put(signing_secret=SECRET)
    assert created.status_code == 201 and created.json()["has_signing_secret"] is True
    assert SECRET not in created.text and "signing_secret" not in created.json()
    assert await stored() == SECRET
    kept = await put(enabled=False)
    assert kept.json()["has_signing_secret"] is True and await stored() == SECRET
    cleared = await put(signing_secret=None)
    assert cleared.json()["has_signing_secret"] is False and await stored() is None

    await put(signing_secret=SECRET)
    before = await database_fingerprint(db)
    for bad in ("short", "with a space 0123456789", "line\nbreak0123456789", "x" * 257):
        refused = await put(signing_secret=bad)
        body = assert_problem(refused, 400)
        assert "signing_secret" in str(body) and bad not in refused.text
    assert await database_fingerprint(db) == before


async def test_a_signing_secret_belongs_to_slack_channels_only(
    tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    acme = await tenant()
    teams_url = "http://127.0.0.1:9/workflows/x/triggers/manual/run"
    before = await database_fingerprint(db)
    refused = await acme.put(
        f"/channels/{uuid.uuid4()}", {"kind": "teams", "url": teams_url, "signing_secret": SECRET}
    )
    assert assert_problem(refused, 422)["detail"].startswith("signing_secret is for Slack channels only")
    assert SECRET not in refused.text
    assert await database_fingerprint(db) == before
    # A Slack channel PUT again as Teams loses its secret: Teams presses are never verified.
    channel = uuid.uuid4()
    slack = {"kind": "slack", "url": "http://127.0.0.1:9/services/T/B/x", "signing_secret": SECRET}
    assert (await acme.put(f"/channels/{channel}", slack)).status_code == 201
    moved = await acme.put(f"/channels/{channel}", {"kind": "teams", "url": teams_url})
    assert moved.status_code == 200 and moved.json()["has_signing_secret"] is False


def test_the_fake_slack_refuses_buttons_block_kit_refuses() -> None:
    """The fake's validator holds Baton to Block Kit's button limits."""
    from tests.fakes.chat import button_problem, slack_payload_problem

    def message(button: dict[str, Any]) -> dict[str, Any]:
        return {"text": "t", "blocks": [{"type": "actions", "elements": [button]}]}

    good = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Pick up"},
        "action_id": "a",
        "value": "v",
    }
    assert button_problem(good) is None and slack_payload_problem(message(good)) is None
    for bad in (
        {**good, "text": {"type": "mrkdwn", "text": "Pick up"}},
        {**good, "text": {"type": "plain_text", "text": "x" * 76}},
        {**good, "action_id": "a" * 256},
        {**good, "value": "v" * 2001},
        {**good, "style": "loud"},
    ):
        assert button_problem(bad) is not None
        assert slack_payload_problem(message(bad)) == "invalid_blocks"
    twice = {"text": "t", "blocks": [{"type": "actions", "elements": [good, good]}]}
    assert slack_payload_problem(twice) == "invalid_blocks"
    assert FakeWebhooks  # the fake the worker posts to runs this same check


async def test_the_api_document_names_the_new_fields_and_never_the_secret_in_an_answer(
    tenant: TenantFactory,
) -> None:
    acme = await tenant()
    document = await acme.client.get("/schema/openapi.json")
    schemas = document.json()["components"]["schemas"]
    assert "slack_user_id" in schemas["UserOut"]["properties"]
    assert "has_signing_secret" in schemas["ChannelOut"]["properties"]
    assert "signing_secret" not in schemas["ChannelOut"]["properties"]
