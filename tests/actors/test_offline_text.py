"""The offline assessor and briefing read like a person wrote them: each fact once, and
sentences that end in one full stop."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from tests.conftest import SessionServices

NOTES = "Tried everything on the client side; needs someone with Exchange admin."


@pytest.fixture
def texts(services: SessionServices) -> dict[str, Any]:
    # Imported here: the actors bind to REDIS_URL, which the session fixture sets.
    from actors.assessment import offline_assessment
    from actors.briefing import offline_briefing
    from actors.context import HandoffContext, Step

    ctx = HandoffContext(
        handoff_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        intent="escalate",
        state="open",
        priority="normal",
        engineer_notes=NOTES,
        snapshot={},
        created_at=datetime.now(UTC),
        handed_off_by=uuid.uuid4(),
        handed_off_by_name="Tess Tran",
        claimed_by=None,
        assessment_status="ready",
        ai_assessment=None,
        ai_assessment_data=None,
        briefing=None,
        briefing_status=None,
        reminded_at=None,
        problem_summary="Outlook keeps asking for the password after the M365 migration.",
        problem_domain="email",
        escalation_reason=NOTES,
        psa_ticket_id=None,
        psa_connection_id=None,
        messages=[{"role": "user", "content": "It started right after the mailbox moved."}],
        steps=[
            Step(1, "Cleared cached credentials", "Prompt came back", None, False),
            Step(2, "Checked modern auth registry keys", None, None, True),
        ],
    )
    assessment = offline_assessment(ctx)
    data = msgspec.to_builtins(assessment)
    ctx = msgspec.structs.replace(ctx, ai_assessment=assessment.summary_prose, ai_assessment_data=data)
    return {"assessment": data, "briefing": offline_briefing(ctx, why="Offline briefing: no AI configured")}


def test_the_technicians_notes_are_said_once_across_assessment_and_briefing(texts: dict[str, Any]) -> None:
    assessment = texts["assessment"]
    everything = "\n".join(
        [
            assessment["summary_prose"],
            assessment["likely_cause"],
            *assessment["suggested_steps"],
            texts["briefing"],
        ]
    )
    assert everything.count("needs someone with Exchange admin") == 1
    assert texts["briefing"].count("Outlook keeps asking") == 1


def test_no_offline_sentence_ends_in_two_full_stops(texts: dict[str, Any]) -> None:
    assessment = texts["assessment"]
    for text in [
        assessment["summary_prose"],
        assessment["likely_cause"],
        *assessment["suggested_steps"],
        texts["briefing"],
    ]:
        assert not re.search(r"\.\.(?!\.)", text), text
        assert "(email)." in texts["briefing"]


def test_the_offline_briefing_says_where_to_start_from_the_assessment(texts: dict[str, Any]) -> None:
    briefing = texts["briefing"]
    assert "Where to start:" in briefing
    assert "- Do the step that was skipped: “Checked modern auth registry keys”." in briefing
    assert briefing.startswith("(Offline briefing: no AI configured)\nTess Tran escalated this session:")
