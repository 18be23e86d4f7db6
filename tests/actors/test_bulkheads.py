"""A slow AI (or a hanging PSA) never holds up the e-mails and chat messages."""

from __future__ import annotations

import asyncpg

from tests.api.conftest import Tenant
from tests.conftest import BatonProcesses
from tests.fakes.anthropic_api import GOOD_ASSESSMENT, FakeAnthropic, tool
from tests.fakes.psa import FakeConnectWise
from tests.fakes.smtp import FakeSmtp

from .conftest import connect_psa, escalation_session, eventually, worker_env

ESCALATIONS = 6
WORKER_THREADS = 4
# Far less than one AI answer: the e-mails cannot have waited for any of them.
EMAILS_WITHIN_S = 15
AI_ANSWERS_AFTER_S = 60


async def test_emails_go_out_while_every_ai_call_is_stuck(
    baton: BatonProcesses,
    acme: Tenant,
    db: asyncpg.Connection,
    ai: FakeAnthropic,
    smtp: FakeSmtp,
    connectwise: FakeConnectWise,
) -> None:
    tech = await acme.user(name="Tess Tech")
    await acme.user("engineer")
    await acme.user("admin")
    connection_id = await connect_psa(acme, connectwise)
    ai.always(tool(GOOD_ASSESSMENT, delay_s=AI_ANSWERS_AFTER_S))
    connectwise.hang_s = AI_ANSWERS_AFTER_S
    for _ in range(ESCALATIONS):
        session_id = await escalation_session(
            acme, tech, psa_ticket_id="4242", psa_connection_id=str(connection_id)
        )
        await acme.handed_off(tech, session_id, "escalate")
    # More slow jobs than threads: without bulkheads they would take every thread.
    worker = baton.worker(
        env=worker_env(ai.env(), smtp.env(), BATON_AI_TIMEOUT_S=str(AI_ANSWERS_AFTER_S + 10)),
        threads=WORKER_THREADS,
    )

    async def all_emailed() -> bool:
        return len(smtp.messages()) == 2 * ESCALATIONS

    await eventually(all_emailed, EMAILS_WITHIN_S, "the e-mails, with the AI stuck", worker.log)
    pending = await db.fetchval("SELECT count(*) FROM session_handoffs WHERE assessment_status = 'pending'")
    assert pending == ESCALATIONS  # every assessment is still waiting on the AI
    assert len(ai.calls) <= WORKER_THREADS // 2  # the AI never had more than its share of threads
    # Its AI calls hang for another minute: a graceful stop would wait them out.
    worker.kill()
