"""The HTTP half of deploy/test-image.sh: a hand-off made and claimed across two web
containers, as a host app and its seniors would, and its e-mails sent by the worker.

Standard library only (it runs on the host's python3, outside the image). Prints one JSON
object: the hand-off, the problem summary and the seniors' addresses, which the shell
script then looks for in the worker's caught mail.

    python3 deploy/image_smoke.py --web URL --web URL --service-token T \
        --mint 'docker exec NAME baton token'
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

API = "/api/v1"
READY_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 10.0
EMAIL_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.5
PROBLEM_SUMMARY = "Image test: VPN drops every hour"


class SmokeFailure(Exception):
    pass


def call(
    method: str, url: str, token: str | None = None, body: Any = None, **headers: str
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def expect(status: int, want: int, what: str, body: Any) -> None:
    if status != want:
        raise SmokeFailure(f"{what}: HTTP {status}, expected {want}: {json.dumps(body)[:400]}")
    print(f"  ok  {what}: {status}", file=sys.stderr)


def wait_ready(web: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = call("GET", f"{web}/ready")
            if status == 200 and body.get("status") == "ready":
                print(f"  ok  {web}/ready: {json.dumps(body)}", file=sys.stderr)
                return
            last = f"HTTP {status} {json.dumps(body)}"
        except (OSError, ValueError) as error:
            last = str(error)
        time.sleep(POLL_INTERVAL_S)
    raise SmokeFailure(f"{web}/ready not ready within {READY_TIMEOUT_S:.0f} s: {last}")


def mint(command: str, user_id: str) -> str:
    done = subprocess.run(
        [*shlex.split(command), user_id], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise SmokeFailure(f"baton token {user_id}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def put_user(web: str, service_token: str, role: str, name: str) -> str:
    user_id = str(uuid.uuid4())
    body = {"email": f"{user_id[:8]}@example.com", "name": name, "account_role": role}
    status, answer = call("PUT", f"{web}{API}/users/{user_id}", service_token, body)
    expect(status, 201, f"PUT /users ({role} {name}) on {web}", answer)
    return user_id


def wait_for_emails(web: str, token: str, handoff_id: str, addresses: set[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + EMAIL_TIMEOUT_S
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, body = call("GET", f"{web}{API}/handoffs/{handoff_id}/deliveries", token)
        if status != 200:
            raise SmokeFailure(f"GET deliveries: HTTP {status}: {json.dumps(body)[:400]}")
        items = [item for item in body["items"] if item["channel"] == "email"]
        sent = {item["recipient"] for item in items if item["status"] == "sent"}
        if addresses <= sent:
            print(f"  ok  e-mail deliveries sent to {len(sent)} seniors (ledger)", file=sys.stderr)
            return items
        time.sleep(POLL_INTERVAL_S)
    raise SmokeFailure(f"e-mail to {sorted(addresses)} not sent within {EMAIL_TIMEOUT_S:.0f} s: {items}")


def run(webs: list[str], service_token: str, mint_command: str) -> dict[str, Any]:
    first, second = webs[0], webs[-1]
    for web in webs:
        wait_ready(web)
    tech = put_user(first, service_token, "technician", "Tess Tech")
    seniors = [
        put_user(second, service_token, "engineer", "Sam Senior"),
        put_user(first, service_token, "engineer", "Erin Engineer"),
    ]
    tokens = {user_id: mint(mint_command, user_id) for user_id in (tech, *seniors)}
    print("  ok  user tokens minted with `baton token`", file=sys.stderr)

    session_id = str(uuid.uuid4())
    session = {
        "user_id": tech,
        "problem_summary": PROBLEM_SUMMARY,
        "problem_domain": "network",
        "steps": [{"step_order": 0, "content": {"text": "Rebooted the firewall"}}],
    }
    status, body = call("PUT", f"{second}{API}/sessions/{session_id}", service_token, session)
    expect(status, 201, f"PUT /sessions on {second}", body)

    request = {"intent": "escalate", "engineer_notes": "Tried it all", "priority": "high"}
    key = str(uuid.uuid4())
    status, created = call(
        "POST", f"{first}{API}/sessions/{session_id}/handoffs", tokens[tech], request, Idempotency_Key=key
    )
    expect(status, 201, f"POST /sessions/{{id}}/handoffs (escalate) on {first}", created)
    handoff_id = created["id"]
    if created["state"] != "open":
        raise SmokeFailure(f"a new hand-off is {created['state']!r}, not 'open'")

    winner, loser = seniors
    status, claimed = call("POST", f"{second}{API}/handoffs/{handoff_id}/claim", tokens[winner])
    expect(status, 200, f"POST /handoffs/{{id}}/claim on {second}", claimed)
    if (claimed.get("claimed_by") or {}).get("id") != winner:
        raise SmokeFailure(f"the claim answered claimed_by {claimed.get('claimed_by')}, not {winner}")
    status, lost = call("POST", f"{first}{API}/handoffs/{handoff_id}/claim", tokens[loser])
    expect(status, 409, f"a second senior's claim on {first}", lost)
    if lost.get("claimed_by_id") != winner:
        raise SmokeFailure(f"the lost claim names {lost.get('claimed_by_id')}, not the winner {winner}")
    status, read = call("GET", f"{first}{API}/handoffs/{handoff_id}", tokens[loser])
    expect(status, 200, f"GET /handoffs/{{id}} on {first}", read)
    if read["state"] != "claimed":
        raise SmokeFailure(f"the hand-off reads {read['state']!r} on the other replica, not 'claimed'")

    addresses = {f"{user_id[:8]}@example.com" for user_id in seniors}
    wait_for_emails(first, tokens[winner], handoff_id, addresses)
    return {
        "handoff_id": handoff_id,
        "problem_summary": PROBLEM_SUMMARY,
        "senior_addresses": sorted(addresses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", action="append", required=True, help="a web container's base URL")
    parser.add_argument("--service-token", required=True)
    parser.add_argument("--mint", required=True, help="command that prints a user token for a user id")
    args = parser.parse_args()
    try:
        result = run(args.web, args.service_token, args.mint)
    except (SmokeFailure, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as error:
        print(f"  FAIL {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
