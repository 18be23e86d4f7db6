"""``Idempotency-Key`` on create: the same key and request replay the first answer.

A key belongs to its account (a unique index on ``(account_id, idempotency_key)``). The
request it was first used with is kept as a fingerprint, and the first answer as JSON on
the hand-off row, so a replay creates nothing and answers exactly what the first did.
The same key with another request (another body, session or user) is a client bug: 422.
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec

from server.problems import Problem
from server.schemas.handoffs import HandoffCreate, HandoffOut
from tables import db
from tables.queries.handoff_create import ExistingHandoff

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# Printable ASCII: a key ends up in logs and in an index.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

_decode_response = msgspec.json.Decoder(HandoffOut).decode


def fingerprint(*, session_id: uuid.UUID, user_id: uuid.UUID, request: HandoffCreate) -> str:
    """sha256 of the request as decoded (defaults filled in), so ``{"intent": "park"}``
    and ``{"intent": "park", "priority": "normal"}`` are the same request."""
    canonical = msgspec.json.encode([str(session_id), str(user_id), request])
    return hashlib.sha256(canonical).hexdigest()


def replay(first: ExistingHandoff, request_fingerprint: str) -> HandoffOut:
    """The first answer for this key, or 422 when the key was used for another request."""
    if first.request_fingerprint != request_fingerprint or first.response is None:
        raise Problem(
            422,
            f"This {IDEMPOTENCY_KEY_HEADER} was already used with a different request; "
            "use a new key for a new request.",
        )
    return _decode_response(first.response)


def response_json(handoff: HandoffOut) -> str:
    """What is kept on the row to answer a replay."""
    return db.dump_json(handoff)
