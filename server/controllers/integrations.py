"""Calls from the outside world that carry no Baton token: Slack's interactions.

``POST /api/v1/integrations/slack/{channel_id}/interactions`` is the Slack app's
interactivity Request URL. Slack sends no Authorization header: the v0 signature with
the channel's signing secret is the authentication (server/slack/signature.py), so the
route is excluded from the bearer middleware and checks everything itself, in this
order: the body's size (Litestar, 413 past ``BODY_MAX_BYTES``), the timestamp, the
channel and its secret, the signature, the replay mark; any of them failing is 401 with
one detail, and nothing is done. (A channel id that is not a UUID is 404, as every
path of the API: the route does not match.) A verified press is answered 200 with an empty body at
once; the claim and the answer through ``response_url`` follow (server/slack/pickup.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import FromPath

from server.slack import signature
from server.slack.interaction import payload_of, press_of
from server.slack.pickup import answer_press
from tables.queries import integrations

# Slack's interaction payloads are well under 64 KiB (a message's blocks included).
BODY_MAX_BYTES = 128 * 1024


class SlackInteractionsController(Controller):
    tags = ("integrations",)

    @post(
        "/integrations/slack/{channel_id:uuid}/interactions",
        status_code=200,
        summary="Slack's interaction requests (Pick up presses), verified by the channel's signing secret",
        exclude_from_auth=True,
        request_max_body_size=BODY_MAX_BYTES,
        media_type="text/plain",
    )
    async def slack_interactions(
        self, request: Request[Any, Any, Any], state: State, channel_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        body = await request.body()
        timestamp = signature.fresh_timestamp(request.headers.get(signature.TIMESTAMP_HEADER))
        verifier = await integrations.slack_signing_secret(channel_id=channel_id)
        if verifier is None:
            raise signature.unverified()
        signed = signature.check_signature(
            verifier.signing_secret, timestamp, body, request.headers.get(signature.SIGNATURE_HEADER)
        )
        await signature.mark_seen(state.redis, signed)
        press = press_of(payload_of(body))
        if press is None:
            return Response(b"", status_code=200, media_type="text/plain")
        task = BackgroundTask(
            answer_press,
            account_id=verifier.account_id,
            channel_id=channel_id,
            press=press,
            redis_client=state.redis,
        )
        return Response(b"", status_code=200, media_type="text/plain", background=task)
