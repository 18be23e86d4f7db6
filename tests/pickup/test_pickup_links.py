"""The pick-up link itself and the e-mail copies that carry it, in this process: the token
names its hand-off and recipient and nothing else can be read into it, and every copy of
a message carries its own recipient's link without user text steering where it goes."""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from typing import Any

import pytest

from tests.api.conftest import settings_with
from tests.conftest import TEST_JWT_SECRET, SessionServices

SECRET = TEST_JWT_SECRET


@pytest.fixture(autouse=True)
def _actors_importable(services: SessionServices) -> None:
    """``actors`` binds its broker to REDIS_URL at import: the session's services set it."""


def _b64decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_token_names_its_hand_off_and_recipient_and_is_compact_url_safe_and_24_hours_long() -> None:
    import pickup_links

    handoff_id, user_id = uuid.uuid4(), uuid.uuid4()
    token = pickup_links.new_token(SECRET, handoff_id=handoff_id, user_id=user_id)

    assert len(token) == pickup_links.TOKEN_CHARS == 71
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    link = pickup_links.read_token(SECRET, token)
    assert (link.handoff_id, link.user_id) == (handoff_id, user_id)
    assert abs(link.expires_at - (pickup_links.clock() + 24 * 3600)) <= 2
    # Neither the secret nor the key derived from it, in any spelling, is in the link.
    raw = _b64decode(token)
    assert SECRET.encode() not in raw and SECRET not in token
    assert pickup_links.link_key(SECRET) != SECRET.encode()


def test_a_link_expires_24_hours_after_it_was_made(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickup_links

    made_at = 1_800_000_000.0
    monkeypatch.setattr(pickup_links, "clock", lambda: made_at)
    token = pickup_links.new_token(SECRET, handoff_id=uuid.uuid4(), user_id=uuid.uuid4())

    monkeypatch.setattr(pickup_links, "clock", lambda: made_at + 24 * 3600 - 1)
    pickup_links.read_token(SECRET, token)  # still good a second before
    monkeypatch.setattr(pickup_links, "clock", lambda: made_at + 24 * 3600)
    with pytest.raises(pickup_links.ExpiredLink):
        pickup_links.read_token(SECRET, token)


def _tampered(token: str, change: str) -> str:
    raw = bytearray(_b64decode(token))
    if change == "hand-off id":
        raw[1:17] = uuid.uuid4().bytes
    elif change == "recipient":
        raw[17:33] = uuid.uuid4().bytes
    elif change == "expiry":
        raw[33:37] = (int.from_bytes(raw[33:37], "big") + 3600).to_bytes(4, "big")
    elif change == "signature":
        raw[-1] ^= 0x01
    elif change == "version":
        raw[0] = 2
    return _b64encode(bytes(raw))


@pytest.mark.parametrize("change", ["hand-off id", "recipient", "expiry", "signature", "version"])
def test_a_link_with_any_byte_changed_is_not_a_link(change: str) -> None:
    import pickup_links

    token = pickup_links.new_token(SECRET, handoff_id=uuid.uuid4(), user_id=uuid.uuid4())
    with pytest.raises(pickup_links.BadLink):
        pickup_links.read_token(SECRET, _tampered(token, change))


@pytest.mark.parametrize(
    "token",
    ["", "x", "A" * 70, "A" * 72, "A" * 70 + "=", "A" * 70 + "/", "é" * 71, "\x00" * 71],
    ids=["empty", "short", "70", "72", "padding", "slash", "non-ascii", "nul"],
)
def test_malformed_text_is_not_a_link_and_never_an_error_of_another_kind(token: str) -> None:
    import pickup_links

    with pytest.raises(pickup_links.BadLink):
        pickup_links.read_token(SECRET, token)


def test_an_expired_tampered_link_is_not_a_link_rather_than_expired() -> None:
    """Only a link Baton made can be told "expired": the tag is checked first."""
    import pickup_links

    token = pickup_links.make_token(SECRET, handoff_id=uuid.uuid4(), user_id=uuid.uuid4(), expires_at=1)
    with pytest.raises(pickup_links.ExpiredLink):
        pickup_links.read_token(SECRET, token)
    with pytest.raises(pickup_links.BadLink):
        pickup_links.read_token(SECRET, _tampered(token, "signature"))


def test_links_are_signed_apart_from_jwts_and_a_jwt_signature_is_never_a_tag() -> None:
    """Domain separation: the link key is HMAC(secret, label), not the secret HS256 uses,
    and a link made under another secret is refused."""
    import hashlib
    import hmac

    import pickup_links

    handoff_id, user_id = uuid.uuid4(), uuid.uuid4()
    token = pickup_links.make_token(SECRET, handoff_id=handoff_id, user_id=user_id, expires_at=2_000_000_000)
    raw = _b64decode(token)
    body = raw[:37]
    as_if_jwt_key = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()[:16]
    assert raw[37:] != as_if_jwt_key
    forged = _b64encode(body + as_if_jwt_key)
    with pytest.raises(pickup_links.BadLink):
        pickup_links.read_token(SECRET, forged)
    with pytest.raises(pickup_links.BadLink):
        pickup_links.read_token("another-secret-" + "9" * 32, token)


# ------------------------------------------------------------------ the copies


def _links(user_ids: dict[str, uuid.UUID], handoff_id: uuid.UUID) -> Any:
    from pickup_links import RecipientLinks

    return RecipientLinks(
        secret=SECRET, prefix="https://baton.example/pickup/", handoff_id=handoff_id, user_ids=user_ids
    )


def _sent(composer: Any, to: str) -> tuple[bytes, str]:
    from actors.deliveries import Claim
    from actors.mail_headers import check_message
    from actors.mail_message import HEADER_NAMES

    outgoing = composer(Claim(id=uuid.uuid4(), recipient=to, attempts=0, interrupted=False))
    check_message(outgoing.raw, HEADER_NAMES)  # exactly Baton's headers, read back by the stdlib
    parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
    assert str(parsed["To"]) == to
    return outgoing.raw, str(parsed.get_content()).replace("\r\n", "\n")


BODIES = {
    "ascii": "A teammate has escalated a session.\n\nReason: Printer down\nPriority: high",
    "non-ascii": "Raison : l'imprimante de Zoë est en panne — urgent\nPriority: high",
    "a line over 998 bytes": "Reason: " + "notes " * 300,
    "the stand-ins themselves": "Reason: baton-recipient@to.invalid "
    + "x" * 71
    + " https://baton.example/pickup/"
    + "x" * 71,
}


@pytest.mark.parametrize("shape", list(BODIES))
def test_every_copy_ends_with_its_own_recipients_link_and_the_text_as_written(shape: str) -> None:
    import pickup_links
    from actors.mail_message import Composer

    body = BODIES[shape]
    handoff_id = uuid.uuid4()
    people = {"dana@example.com": uuid.uuid4(), "sam@example.com": uuid.uuid4()}
    composer = Composer(
        subject="New escalation: printer",
        body=body,
        settings=settings_with(smtp_url=None),
        links=_links(people, handoff_id),
    )
    tokens = {}
    for address, user_id in people.items():
        _, text = _sent(composer, address)
        assert text.startswith(body.rstrip())
        intro, _, url = text.rstrip("\n").rpartition("\n")
        assert intro.endswith("(this link is yours alone and works for 24 hours):")
        assert url.startswith("https://baton.example/pickup/")
        link = pickup_links.read_token(SECRET, url.removeprefix("https://baton.example/pickup/"))
        assert (link.handoff_id, link.user_id) == (handoff_id, user_id)
        tokens[address] = url
    assert len(set(tokens.values())) == 2  # a link per recipient

    # An address nobody eligible has (deactivated since the tier fired) gets no link.
    _, text = _sent(composer, "gone@example.com")
    assert "/pickup/" not in text.removeprefix(body) and text.startswith(body.rstrip())


def test_copies_are_byte_swapped_from_one_template_when_the_text_goes_out_as_written() -> None:
    """The cheap path: one render, then microseconds per copy; the slow one only for a
    body no 7bit/8bit message can carry."""
    from actors.mail_message import Composer

    settings = settings_with(smtp_url=None)
    people = {"dana@example.com": uuid.uuid4()}
    fast = Composer(
        subject="S", body=BODIES["non-ascii"], settings=settings, links=_links(people, uuid.uuid4())
    )
    slow = Composer(
        subject="S",
        body=BODIES["a line over 998 bytes"],
        settings=settings,
        links=_links(people, uuid.uuid4()),
    )
    assert fast._tail is not None and slow._tail is None
    raw, _ = _sent(fast, "dana@example.com")
    assert b"Content-Transfer-Encoding: 8bit" in raw
    raw, _ = _sent(slow, "dana@example.com")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw or b"base64" in raw


def test_without_links_the_message_is_the_one_baton_always_sent() -> None:
    from actors.mail_message import Composer

    settings = settings_with(smtp_url=None)
    composer = Composer(subject="S", body=BODIES["ascii"], settings=settings)
    _, text = _sent(composer, "dana@example.com")
    assert text == BODIES["ascii"] + "\n"
