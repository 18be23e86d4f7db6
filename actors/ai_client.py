"""The Anthropic Messages API, as the actors use it: one forced tool call, or plain text.

``AsyncAnthropic`` (anthropic ≥ 2: httpx2 underneath, the key sent as ``Authorization:
Bearer``) with ``max_retries`` and ``timeout`` from settings: the SDK retries 408/409/
429/5xx/529 and timeouts itself, with backoff and ``retry-after``. A server's
``retry-after`` is obeyed without a cap, so the whole call also runs under an overall
deadline (``call_budget_s``). With no ``ANTHROPIC_API_KEY`` nothing here is called: the
actors use their offline rules instead.

``anthropic`` is imported on first use: it takes two seconds, which the web process
(it imports the actors to enqueue them) and a worker without a key should not pay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import TYPE_CHECKING, Any

from settings import Settings, get_settings

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("baton.ai")

# Allowance on top of the per-try timeouts for the SDK's backoff between tries
# (0.5 s doubling to 8 s at most).
RETRY_BACKOFF_ALLOWANCE_S = 10.0
API_VERSION_SUFFIX = "/v1"


class AiError(Exception):
    """The AI could not give a usable answer (after the SDK's retries)."""


def ai_configured(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).anthropic_api_key)


def call_budget_s(settings: Settings | None = None) -> float:
    """The longest one ``call_tool``/``complete_text`` may take, retries included."""
    settings = settings or get_settings()
    return settings.ai_timeout_s * (settings.ai_max_retries + 1) + RETRY_BACKOFF_ALLOWANCE_S


# Room for the Postgres and Redis work around an AI call, in an AI job's time limit.
AI_JOB_MARGIN_S = 30


def ai_job_time_limit_ms() -> int:
    """Dramatiq time limit of a job built around one AI call (assessment, briefing)."""
    return int((call_budget_s() + AI_JOB_MARGIN_S) * 1000)


def _base_url(settings: Settings) -> str | None:
    url = settings.anthropic_base_url
    if not url:
        return None
    url = url.rstrip("/")
    # The SDK adds /v1/messages itself: a base URL ending in /v1 would ask /v1/v1/messages.
    if url.endswith(API_VERSION_SUFFIX):
        url = url[: -len(API_VERSION_SUFFIX)]
    return url


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic] = (
    weakref.WeakKeyDictionary()
)


def client() -> anthropic.AsyncAnthropic:
    """One client per event loop: its connection pool belongs to the loop that opened it."""
    import anthropic

    settings = get_settings()
    if not settings.anthropic_api_key:
        raise AiError("ANTHROPIC_API_KEY is not set")
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None:
        found = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key,
            base_url=_base_url(settings),
            max_retries=settings.ai_max_retries,
            timeout=settings.ai_timeout_s,
        )
        _clients[loop] = found
    return found


def strip_fences(text: str) -> str:
    """```json … ``` (or bare ``` … ```) around a JSON answer, removed."""
    cleaned = text.strip()
    if cleaned.startswith("```"):
        first_line, _, rest = cleaned.partition("\n")
        cleaned = rest if rest else first_line.strip("`")
    if cleaned.endswith("```"):
        cleaned = cleaned[:-3].rstrip()
    return cleaned.strip()


def parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(strip_fences(text))
    except ValueError as exc:
        raise AiError(f"the answer is not JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise AiError(f"the answer is JSON but not an object: {type(value).__name__}")
    return value


def as_data_block(tag: str, value: Any) -> str:
    """``value`` as JSON inside ``<tag>``; ``<``/``>`` escaped so the data cannot close the tag."""
    encoded = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<{tag}>\n{encoded}\n</{tag}>"


async def _create(**request: Any) -> Any:
    import anthropic

    settings = get_settings()
    try:
        return await asyncio.wait_for(
            client().messages.create(model=settings.ai_model, **request), timeout=call_budget_s(settings)
        )
    except TimeoutError as exc:
        raise AiError(f"no answer within {call_budget_s(settings):.0f} s") from exc
    except anthropic.APIStatusError as exc:
        raise AiError(f"the AI answered HTTP {exc.status_code}") from exc
    except anthropic.APIError as exc:  # connection errors, timeouts after the SDK's retries
        raise AiError(f"{type(exc).__name__}: {exc}") from exc


async def call_tool(
    *,
    system: str,
    prompt: str,
    tool_name: str,
    tool_description: str,
    input_schema: dict[str, Any],
    max_tokens: int,
) -> dict[str, Any]:
    """The input of the one tool the model is made to call; a JSON text answer as fallback."""
    response = await _create(
        max_tokens=max_tokens,
        system=system,
        messages=[{"role": "user", "content": prompt}],
        tools=[{"name": tool_name, "description": tool_description, "input_schema": input_schema}],
        tool_choice={"type": "tool", "name": tool_name},
    )
    texts: list[str] = []
    for block in response.content:
        kind = getattr(block, "type", None)
        if kind == "tool_use" and getattr(block, "name", None) == tool_name:
            tool_input = block.input
            if not isinstance(tool_input, dict):
                raise AiError(f"the tool input is not an object: {type(tool_input).__name__}")
            return dict(tool_input)
        if kind == "text":
            texts.append(block.text)
    # A proxy or an older model may answer in text despite tool_choice: accept JSON there.
    return parse_json_object("".join(texts))


async def complete_text(*, system: str, prompt: str, max_tokens: int) -> str:
    response = await _create(
        max_tokens=max_tokens,
        system=system,
        messages=[{"role": "user", "content": prompt}],
    )
    text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
    if not text.strip():
        raise AiError("the answer has no text")
    return text.strip()
