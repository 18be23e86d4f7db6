"""The demo account that ``baton dev`` and ``baton seed --demo`` create.

An MSP with one team: a technician, three seniors (owner, admin, engineer), a fourth
senior who has left (inactive, so never notified), and three troubleshooting sessions
with steps, branches and messages, one of them on a PSA ticket.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from server.tokens import mint_service_token, mint_user_token
from settings import get_settings
from tables import Account, AiSession, PsaConnection, SessionBranch, SessionStep, Team, User

log = logging.getLogger("baton.cli")

DEMO_ACCOUNT_NAME = "Northwind IT (demo)"
DEMO_PSA_PORT = 56380

DEMO_USERS: list[dict[str, Any]] = [
    {"name": "Tess Tran", "role": "technician", "active": True},
    {"name": "Dana Okafor", "role": "owner", "active": True},
    {"name": "Sam Reyes", "role": "admin", "active": True},
    {"name": "Eli Novak", "role": "engineer", "active": True},
    {"name": "Ivy Marsh", "role": "engineer", "active": False},
]

DEMO_SESSIONS: list[dict[str, Any]] = [
    {
        "problem_summary": "Outlook keeps asking for the password after the M365 migration",
        "problem_domain": "email",
        "confidence_tier": "medium",
        "psa_ticket_id": "48213",
        "steps": [
            ("Checked the account in the M365 admin centre", "Licensed and active", None, False),
            ("Cleared cached credentials in Credential Manager", "Prompt came back", None, False),
            ("Created a new Outlook profile", None, "Same prompt on the new profile after 5 min", False),
            ("Checked modern auth registry keys", None, None, True),
        ],
        "branching": False,
        "messages": [
            ("user", "Customer says it started right after the mailbox moved on Friday."),
            ("assistant", "Modern authentication may be disabled on the client; check the keys."),
        ],
    },
    {
        "problem_summary": "Branch-office VPN drops every 20 minutes",
        "problem_domain": "network",
        "confidence_tier": "low",
        "psa_ticket_id": None,
        "steps": [
            ("Checked the tunnel logs on the firewall", "Phase 2 rekey failures", None, False),
            ("Compared phase 2 lifetimes on both ends", "3600 vs 1200 seconds", None, False),
            ("Aligned lifetimes to 3600", None, "Still drops, now every 60 min", False),
        ],
        "branching": True,
        "messages": [
            ("user", "Drops line up with the rekey interval."),
            ("assistant", "Try DPD settings and PFS group mismatch next."),
        ],
    },
    {
        "problem_summary": "Accounting PC cannot print to the shared Canon",
        "problem_domain": "printing",
        "confidence_tier": "high",
        "psa_ticket_id": None,
        "steps": [
            ("Pinged the printer", "Replies", None, False),
            ("Reinstalled the driver", "Test page prints from the server", None, False),
        ],
        "branching": False,
        "messages": [("user", "Only this PC fails; others print fine.")],
    },
]


def _email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@northwind.example"


async def has_accounts() -> bool:
    return bool(await Account.exists())


async def seed_demo(*, reset: bool = False) -> dict[str, Any]:
    """The demo account, created when there is none (or ``reset``: the old one and all it
    holds deleted first); returns what ``baton seed --demo --json`` prints. Seeding again
    keeps the one there, so ``baton dev`` and scripts always mean the same account."""
    if reset:
        removed = await Account.delete().where(Account.name == DEMO_ACCOUNT_NAME).returning(Account.id)
        if removed:
            log.info("deleted the demo account and everything in it (%d)", len(removed))
    else:
        existing = await demo_summary()
        if existing is not None:
            return existing
    account_id = uuid.uuid4()
    team_id = uuid.uuid4()
    psa_id = uuid.uuid4()
    service_token_jti = uuid.uuid4()
    users = [{**spec, "id": uuid.uuid4(), "email": _email(spec["name"])} for spec in DEMO_USERS]
    technician = users[0]
    async with Account._meta.db.transaction():
        await Account.insert(
            Account(id=account_id, name=DEMO_ACCOUNT_NAME, service_token_jti=service_token_jti)
        )
        await Team.insert(Team(id=team_id, account_id=account_id, name="Service Desk"))
        await User.insert(
            *[
                User(
                    id=user["id"],
                    account_id=account_id,
                    team_id=team_id,
                    email=user["email"],
                    name=user["name"],
                    account_role=user["role"],
                    is_active=user["active"],
                )
                for user in users
            ]
        )
        await PsaConnection.insert(
            PsaConnection(
                id=psa_id,
                account_id=account_id,
                kind="halopsa",
                # baton dev's demo PSA (cli/demo_psa.py); it points this at its port.
                base_url=f"http://127.0.0.1:{DEMO_PSA_PORT}",
                credentials={"client_id": "demo", "client_secret": "demo"},
                member_mapping={},
            )
        )
        for spec in DEMO_SESSIONS:
            await _seed_session(spec, account_id, team_id, technician["id"], psa_id)
    summary = await demo_summary()
    assert summary is not None and summary["account_id"] == str(account_id)
    return summary


def _user_out(user: dict[str, Any], secret: str) -> dict[str, Any]:
    return {
        "id": str(user["id"]),
        "name": user["name"],
        "email": user["email"],
        "role": user["role"],
        "active": user["active"],
        "token": mint_user_token(secret, user["id"]),
    }


async def _seed_session(
    spec: dict[str, Any],
    account_id: uuid.UUID,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    psa_id: uuid.UUID,
) -> None:
    session_id = uuid.uuid4()
    branch_ids = [uuid.uuid4(), uuid.uuid4()] if spec["branching"] else []
    await AiSession.insert(
        AiSession(
            id=session_id,
            account_id=account_id,
            team_id=team_id,
            user_id=user_id,
            status="active",
            problem_summary=spec["problem_summary"],
            problem_domain=spec["problem_domain"],
            confidence_tier=spec["confidence_tier"],
            step_count=len(spec["steps"]),
            is_branching=spec["branching"],
            active_branch_id=branch_ids[-1] if branch_ids else None,
            psa_ticket_id=spec["psa_ticket_id"],
            psa_connection_id=psa_id if spec["psa_ticket_id"] else None,
            conversation_messages=[{"role": role, "content": text} for role, text in spec["messages"]],
        )
    )
    await SessionStep.insert(
        *[
            SessionStep(
                session_id=session_id,
                step_order=order,
                content={"text": text},
                selected_option=option,
                free_text_input=free_text,
                was_skipped=skipped,
            )
            for order, (text, option, free_text, skipped) in enumerate(spec["steps"], start=1)
        ]
    )
    if branch_ids:
        await SessionBranch.insert(
            SessionBranch(
                id=branch_ids[0],
                session_id=session_id,
                label="Rekey lifetimes",
                status="ruled_out",
                status_reason="Aligned; drops continue",
                branch_order=0,
            ),
            SessionBranch(
                id=branch_ids[1],
                session_id=session_id,
                label="Dead peer detection",
                status="exploring",
                parent_branch_id=branch_ids[0],
                branch_order=1,
            ),
        )


async def demo_summary() -> dict[str, Any] | None:
    """The demo account with its people (new tokens), team and sessions (their status now);
    the oldest one, should an older Baton have seeded several."""
    account = (
        await Account.objects().where(Account.name == DEMO_ACCOUNT_NAME).order_by(Account.created_at).first()
    )
    if account is None:
        return None
    users = await User.select().where(User.account_id == account.id).order_by(User.created_at)
    order = {spec["name"]: i for i, spec in enumerate(DEMO_USERS)}
    users.sort(key=lambda row: order.get(row["name"], len(order)))
    team = await Team.select(Team.id).where(Team.account_id == account.id).order_by(Team.created_at).first()
    sessions = (
        await AiSession.select(
            AiSession.id, AiSession.problem_summary, AiSession.status, AiSession.psa_ticket_id
        )
        .where(AiSession.account_id == account.id)
        .order_by(AiSession.created_at)
    )
    seeded = {spec["problem_summary"]: i for i, spec in enumerate(DEMO_SESSIONS)}
    sessions.sort(key=lambda row: seeded.get(row["problem_summary"], len(seeded)))
    secret = get_settings().jwt_secret or ""
    return {
        "account_id": str(account.id),
        "account_name": account.name,
        "team_id": str(team["id"]) if team else None,
        # The account's current token again (the same jti), so it keeps working.
        "service_token": mint_service_token(secret, account.id, jti=account.service_token_jti),
        "users": [
            _user_out(
                {
                    "id": row["id"],
                    "name": row["name"],
                    "email": row["email"],
                    "role": row["account_role"],
                    "active": row["is_active"],
                },
                secret,
            )
            for row in users
        ],
        "sessions": [
            {
                "id": str(row["id"]),
                "problem_summary": row["problem_summary"],
                "status": row["status"],
                "psa_ticket_id": row["psa_ticket_id"],
            }
            for row in sessions
        ],
    }


async def point_demo_psa_at(base_url: str) -> int:
    """The demo account's PSA connection now goes to ``base_url`` (the demo PSA's port may
    differ from the one seeded); the number of connections changed."""
    accounts = Account.select(Account.id).where(Account.name == DEMO_ACCOUNT_NAME)
    changed = (
        await PsaConnection.update({PsaConnection.base_url: base_url})
        .where(PsaConnection.account_id.is_in(accounts), PsaConnection.kind == "halopsa")
        .returning(PsaConnection.id)
    )
    return len(changed)
