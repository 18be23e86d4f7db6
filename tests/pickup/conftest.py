"""Picking up from an e-mail's link against real ``baton serve`` / ``baton worker``
processes, whose ``BATON_PUBLIC_URL`` is the web's own address, and the fake SMTP server
the e-mails (and their links) arrive at.

``Browser`` stands for one person's browser: its own cookie jar, and the headers a
browser sends with a form's POST (``Origin``, ``Sec-Fetch-Site``). ``scanner`` is what a
mail scanner is: a plain GET with nothing else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from cli.processes import free_port
from tests.actors.conftest import smtp, worker_env
from tests.api.conftest import Person, Tenant, inbox_redis, new_tenant
from tests.conftest import BatonProcess, BatonProcesses, wait_for

__all__ = ["inbox_redis", "smtp"]  # fixtures shared with tests.actors / tests.api

TOKEN = r"[A-Za-z0-9_-]{71}"
FORM_FIELD = re.compile(r'<input type="hidden" name="csrf" value="([^"]+)">')
COOKIE = "baton_pickup"


@dataclass
class Web:
    """A ``baton serve`` whose public URL is its own address."""

    process: BatonProcess
    public_url: str

    @property
    def env(self) -> dict[str, str]:
        return {"BATON_PUBLIC_URL": self.public_url}

    def link_tokens(self, text: str) -> list[str]:
        return re.findall(rf"{re.escape(self.public_url)}/pickup/({TOKEN})", text)


@pytest.fixture
def web(baton: BatonProcesses) -> Web:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    return Web(baton.serve(env={"BATON_PUBLIC_URL": public_url}, port=port), public_url)


def start_worker(baton: BatonProcesses, web: Web, *env: dict[str, str], **extra: str) -> BatonProcess:
    worker = baton.worker(env=worker_env(*env, web.env, **extra))
    wait_for(lambda: "ready for action" in worker.log(), 30, "baton worker to boot")
    return worker


@dataclass
class Acme:
    """An MSP: a technician who escalates, and two seniors who get the e-mails."""

    tenant: Tenant
    tess: Person
    dana: Person
    sam: Person

    async def escalate(self, **body: Any) -> dict[str, Any]:
        session_id = await self.tenant.session(
            self.tess, problem_summary="VPN drops every hour at the branch"
        )
        return await self.tenant.handed_off(self.tess, session_id, "escalate", **body)


@pytest.fixture
async def acme(web: Web, db: asyncpg.Connection) -> AsyncIterator[Acme]:
    async with httpx.AsyncClient(base_url=web.public_url, timeout=10) as client:
        tenant = await new_tenant(db, client, "Acme MSP")
        yield Acme(
            tenant,
            tess=await tenant.user("technician", name="Tess Tran"),
            dana=await tenant.user("owner", name="Dana Okafor"),
            sam=await tenant.user("engineer", name="Sam Reyes"),
        )


def address(person: Person) -> str:
    return f"{person.id.hex[:8]}@example.com"


class Browser:
    """One person's browser on the pick-up page."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.http = httpx.AsyncClient(base_url=web.public_url, timeout=10)
        self.form_token: str | None = None

    async def open(self, token: str) -> httpx.Response:
        """Follow the e-mail's link; remember the page's form token, when it has a form
        (a page without one leaves the last, as an earlier tab still shows it)."""
        response = await self.http.get(f"/pickup/{token}")
        found = FORM_FIELD.search(response.text)
        if found:
            self.form_token = found.group(1)
        return response

    async def press_pick_up(
        self, token: str, *, origin: str | None = None, site: str | None = "same-origin", **form: str
    ) -> httpx.Response:
        """The form's POST, with what a browser sends along (``origin``: another one)."""
        headers = {"Origin": origin or self.web.public_url}
        if site is not None:
            headers["Sec-Fetch-Site"] = site
        fields = {"csrf": self.form_token or "", **form}
        return await self.http.post(f"/pickup/{token}", data=fields, headers=headers)

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def browsers(web: Web) -> AsyncIterator[Any]:
    opened: list[Browser] = []

    def new() -> Browser:
        browser = Browser(web)
        opened.append(browser)
        return browser

    yield new
    for browser in opened:
        await browser.close()


async def handoff_row(db: asyncpg.Connection, handoff_id: str | uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT state, claimed_by, claimed_at, briefing_status FROM session_handoffs WHERE id = $1",
        uuid.UUID(str(handoff_id)),
    )
    assert row is not None
    return row


async def assert_untouched(db: asyncpg.Connection, handoff_id: str | uuid.UUID) -> None:
    """Open, nobody's, and no briefing asked for (a claim, or a GET that wrote, would have)."""
    row = await handoff_row(db, handoff_id)
    assert (row["state"], row["claimed_by"], row["briefing_status"]) == ("open", None, None)
    jobs = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE actor_name = 'generate_briefing' AND payload->>'handoff_id' = $1",
        str(handoff_id),
    )
    assert jobs == 0
