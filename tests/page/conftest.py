"""The inbox page in a real headless Chromium, against real ``baton serve`` replicas.

The browser is Debian's ``chromium`` (``.ci/run`` installs it when missing; Playwright's
own browser download does not work here), driven by the Python ``playwright`` package.
``Browser.launch`` gives every run a fresh temporary profile, and each senior gets a
context of their own, so no storage is shared between them.

Tenants are built through the API, as the host app would (``tests.api.conftest``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, WebSocketRoute, async_playwright

from tests.api.conftest import Person, Tenant, new_tenant
from tests.conftest import REPO_ROOT, BatonProcess, BatonProcesses, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1360, "height": 900}
# The README's screenshots are retaken only when asked (BATON_UPDATE_SCREENSHOTS=1), so a
# test run leaves the tree clean; otherwise they go to a temporary folder.
UPDATE_SCREENSHOTS = os.environ.get("BATON_UPDATE_SCREENSHOTS") == "1"
README_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
SCRATCH_SCREENSHOTS = Path(tempfile.gettempdir()) / "baton-screenshots"

# What the product promises ("new cards slide in within a second"), with room for a
# loaded two-core CI box; waits on background work are longer.
LIVE_MS = 3_000
WORKER_MS = 30_000
RECONNECT_MS = 30_000

# No AI, e-mail or chat by accident: the offline assessor and briefing, mail to files.
QUIET_ENV = {
    "ANTHROPIC_API_KEY": "",
    "ANTHROPIC_BASE_URL": "",
    "SMTP_URL": "",
    "BATON_OUTBOX_SWEEP_INTERVAL_S": "0.5",
}


# ------------------------------------------------------------------ the cluster


@dataclass
class Cluster:
    """Two web replicas on one Postgres and Redis, and workers when a test starts them."""

    baton: BatonProcesses
    web1: BatonProcess
    web2: BatonProcess
    workers: list[BatonProcess] = field(default_factory=list)

    def start_worker(self, **env: str) -> BatonProcess:
        worker = self.baton.worker(env={**QUIET_ENV, **env}, threads=8)
        wait_for(lambda: "ready for action" in worker.log(), 30, "baton worker to boot")
        self.workers.append(worker)
        return worker

    def restart_web1(self) -> None:
        """SIGKILL, then a new ``baton serve`` on the same port: a crashed replica coming back."""
        port = self.web1.port
        self.web1.kill()
        self.web1 = self.baton.serve(env=QUIET_ENV, port=port)


@pytest.fixture
def cluster(baton: BatonProcesses) -> Cluster:
    return Cluster(baton, baton.serve(env=QUIET_ENV), baton.serve(env=QUIET_ENV))


# ------------------------------------------------------------------ people and their sessions


def steps(*lines: str) -> list[dict[str, Any]]:
    return [{"step_order": order, "content": {"text": line}} for order, line in enumerate(lines)]


# Sessions as a help desk would hand them off, for tests and for screenshots that look
# like a real morning.
OUTLOOK = {
    "problem_summary": "Outlook keeps asking for the password after the M365 migration",
    "problem_domain": "email",
    "confidence_tier": "medium",
    "psa_ticket_id": "48213",
    "steps": steps(
        "Checked the account in the M365 admin centre",
        "Cleared cached credentials in Credential Manager",
        "Created a new Outlook profile",
    ),
}
VPN = {
    "problem_summary": "Branch-office VPN drops every 20 minutes",
    "problem_domain": "network",
    "confidence_tier": "low",
    "steps": steps("Checked the tunnel logs on the firewall", "Compared phase 2 lifetimes on both ends"),
}
PRINTER = {
    "problem_summary": "Accounting PC cannot print to the shared Canon",
    "problem_domain": "printing",
    "confidence_tier": "high",
    "psa_ticket_id": "48240",
    "steps": steps("Pinged the printer", "Reinstalled the driver"),
}


def token_of(person: Person) -> str:
    return person.headers["Authorization"].removeprefix("Bearer ")


@dataclass
class Acme:
    """An MSP with a technician who escalates and three seniors who watch the inbox."""

    tenant: Tenant
    tess: Person
    dana: Person
    sam: Person
    eli: Person

    async def escalate(self, session: dict[str, Any], **body: Any) -> dict[str, Any]:
        session_id = await self.tenant.session(self.tess, **session)
        return await self.tenant.handed_off(self.tess, session_id, "escalate", **body)


@pytest.fixture
async def acme(cluster: Cluster, db: asyncpg.Connection) -> AsyncIterator[Acme]:
    async with httpx.AsyncClient(base_url=cluster.web1.base_url, timeout=10) as client:
        tenant = await new_tenant(db, client, "Acme MSP")
        yield Acme(
            tenant,
            tess=await tenant.user("technician", name="Tess Tran"),
            dana=await tenant.user("owner", name="Dana Okafor"),
            sam=await tenant.user("admin", name="Sam Reyes"),
            eli=await tenant.user("engineer", name="Eli Novak"),
        )


# ------------------------------------------------------------------ the browser


@pytest.fixture
async def browser(baton: BatonProcesses) -> AsyncIterator[Browser]:
    # Requests `baton` so pages close before the servers stop (no lingering sockets
    # holding a replica in its graceful shutdown).
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class InboxPage:
    page: Page
    person: Person
    problems: list[str]

    def card(self, text: str) -> Locator:
        return self.page.locator(".card", has_text=text)

    @property
    def connection(self) -> Locator:
        return self.page.locator("#connection")

    async def screenshot(self, name: str) -> Path:
        folder = README_SCREENSHOTS if UPDATE_SCREENSHOTS else SCRATCH_SCREENSHOTS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        await self.page.screenshot(path=str(path))
        return path


class Inboxes:
    """Opens seniors' inbox pages; every page must end without a script error or a
    Content-Security-Policy violation."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[InboxPage] = []

    async def open(
        self,
        server: BatonProcess,
        person: Person,
        *,
        gate: SocketGate | None = None,
        install_clock: bool = False,
        clock_time: datetime | None = None,
        sign_in: bool = True,
        **context_options: Any,
    ) -> InboxPage:
        """A senior's page, signed in through a ``baton dev``-style link unless ``sign_in``
        is false; ``context_options`` (viewport, color_scheme…) go to the browser context.
        ``clock_time`` starts the page's clock there (a machine whose clock is wrong); it
        flows on from it, as ``install_clock``'s does from now."""
        options: dict[str, Any] = {"viewport": VIEWPORT, "color_scheme": "light", **context_options}
        context = await self.browser.new_context(**options)
        page = await context.new_page()
        inbox = InboxPage(page, person, [])
        page.on("pageerror", lambda error: inbox.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                inbox.problems.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        if gate is not None:
            await gate.install(page)
        if install_clock or clock_time is not None:
            await page.clock.install(time=clock_time)  # time still flows; a test can make it jump
        if not sign_in:
            await page.goto(f"{server.base_url}/inbox")
        else:
            await page.goto(f"{server.base_url}/inbox#token={token_of(person)}")
            await page.locator('#connection[data-state="live"]').wait_for(timeout=10_000)
        self.opened.append(inbox)
        return inbox

    def assert_clean(self) -> None:
        problems = [f"{inbox.person.name}: {problem}" for inbox in self.opened for problem in inbox.problems]
        assert not problems, "\n".join(problems)


@pytest.fixture
async def inboxes(browser: Browser) -> AsyncIterator[Inboxes]:
    opened = Inboxes(browser)
    yield opened
    opened.assert_clean()


class SocketGate:
    """Stands between a page and its inbox sockets, each forwarded as it is, except for
    the events held back and the sockets gone silent."""

    def __init__(self, hold_back: str | None = None) -> None:
        self.hold_back = hold_back
        self.connections: list[dict[str, bool]] = []

    async def install(self, page: Page) -> None:
        await page.route_web_socket(re.compile(r"/api/v1/inbox"), self._route)

    def _route(self, socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        connection = {"silent": False}
        self.connections.append(connection)

        def from_server(message: str | bytes) -> None:
            if connection["silent"] or json.loads(message).get("type") == self.hold_back:
                return
            socket.send(message)

        server.on_message(from_server)

    def go_silent(self) -> None:
        """The current socket stays open but nothing reaches the page any more, and the
        page is not told: a socket after the laptop slept, or its Wi-Fi changed."""
        self.connections[-1]["silent"] = True


@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    """Fail, never skip, when the browser is missing: these tests are the page's only check."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
