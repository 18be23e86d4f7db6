"""Completing the generated OpenAPI document: the error answers and closed request bodies.

Litestar documents what a handler returns on success and its body validation (as a
JSON shape Baton never sends); Baton's handlers also answer RFC 9457 problem details
that they raise from deep inside the domain (401, 403, 404, 409, 422, 429, 500). Rather
than repeat one list on every decorator, the document is completed once, at startup,
by rules that follow the API's conventions (docs/api.md "Errors every endpoint can
answer"), so clients and the fuzzer (tests/operations/test_schemathesis.py) see every
status an operation can answer, each with the problem shape.

Request bodies are msgspec Structs with ``forbid_unknown_fields`` (an unknown field is a
400) and maps with bounded or typed keys; Litestar's schema generator carries neither
into the document, so those schemas get ``additionalProperties: false`` and
``propertyNames`` here, by Struct name, from msgspec's view of the Struct.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    RequestBody,
    Schema,
)

from server.problems import PROBLEM_MEDIA_TYPE

API_PREFIX = "/api/v1"
PROBLEM_SCHEMA_NAME = "ProblemDetails"
WRITE_METHODS = ("post", "put", "patch", "delete")

EVERY_API_CALL: dict[str, str] = {
    "400": "The request is not valid: body, query, header or a value that cannot be stored.",
    "401": "No token, or a token that is not valid (`WWW-Authenticate: Bearer`).",
    "403": (
        "The wrong kind of caller: a user on a host-app write, the host app on a user endpoint, "
        "or a user whose role may not (escalation policies: owners and admins)."
    ),
    "404": "Not found in the caller's account (another account's row is 404 too).",
    "500": "A fault on Baton's side, logged; nothing was committed.",
}
EVERY_API_WRITE: dict[str, str] = {
    "409": (
        "Conflicts with the current state (`open_handoff_id`, `claimed_by_*`, `existing_policy_id` say more)."
    ),
    "422": "A rule about the data itself: an id that is not of this account, a reused key, …",
    "429": "Too many writes by this caller: try again after `Retry-After` seconds.",
}
# Successes a handler answers besides its decorator's status.
OTHER_SUCCESSES: dict[tuple[str, str], dict[str, str]] = {
    ("get", f"{API_PREFIX}/handoffs/{{handoff_id}}/briefing"): {"202": "The briefing is being written."},
    ("get", "/ready"): {},
}
PUT_CREATED = "Created (200 when an existing one was replaced)."
# Operations outside the bearer scheme (their request's signature is their authentication):
# their own error answers, instead of the conventions' (no 403, 404, 409, 422 or 429 there).
SLACK_INTERACTIONS = f"{API_PREFIX}/integrations/slack/{{channel_id}}/interactions"
OWN_ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("post", SLACK_INTERACTIONS): {
        "400": "Signed, but no Slack interaction payload in the form body.",
        "401": "Not verified: no such Slack channel or no signing secret, a bad signature, a "
        "timestamp more than 300 s from now, or a replay (one detail for all).",
        "404": "The path's channel id is not a UUID (the route does not match).",
        "413": "A body over 128 KiB.",
        "500": "A fault on Baton's side, logged; nothing was done.",
        "503": "Redis cannot say whether the request is a replay: refused (fail closed); `Retry-After`.",
    },
}

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details; some errors add members of their own.",
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
    },
    required=["type", "title", "status", "detail"],
)

SLACK_INTERACTION_BODY = RequestBody(
    required=True,
    description="Slack's interaction request: the payload JSON in a form field, signed by "
    "`X-Slack-Signature` and `X-Slack-Request-Timestamp`.",
    content={
        "application/x-www-form-urlencoded": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                properties={"payload": Schema(type=OpenAPIType.STRING, description="Slack's JSON payload.")},
                required=["payload"],
            )
        )
    },
)


def _problem(description: str, *, retry_after: bool = False) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if retry_after:
        headers = {
            "Retry-After": OpenAPIHeader(
                schema=Schema(type=OpenAPIType.INTEGER), required=True, description="Seconds to wait."
            )
        }
    return OpenAPIResponse(
        description=description,
        headers=headers,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{PROBLEM_SCHEMA_NAME}")
            )
        },
    )


def _complete_operation(method: str, path: str, operation: Any) -> None:
    responses: dict[str, Any] = operation.responses if operation.responses is not None else {}
    if path == "/ready":
        responses["503"] = _problem("Postgres or Redis is unreachable (`checks` says which).")
    if (method, path) == ("post", SLACK_INTERACTIONS):
        # The handler reads the raw body itself (the signature covers its bytes).
        operation.request_body = SLACK_INTERACTION_BODY
    own_errors = OWN_ERRORS.get((method, path))
    if own_errors is not None:
        for status, description in own_errors.items():
            responses[status] = _problem(description, retry_after=status == "503")
    elif path.startswith(API_PREFIX):
        wanted = dict(EVERY_API_CALL)
        if method in WRITE_METHODS:
            wanted.update(EVERY_API_WRITE)
        for status, description in wanted.items():
            # Replaces Litestar's own 400, whose JSON shape is not what Baton sends.
            responses[status] = _problem(description, retry_after=status == "429")
    if method == "put" and "200" in responses and "201" not in responses:
        created = copy.copy(responses["200"])
        created.description = PUT_CREATED
        responses["201"] = created
    for status, description in OTHER_SUCCESSES.get((method, path), {}).items():
        if "200" in responses:
            other = copy.copy(responses["200"])
            other.description = description
            responses[status] = other
    operation.responses = responses


def _structs(base: type[msgspec.Struct] = msgspec.Struct) -> Iterator[type[msgspec.Struct]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _structs(sub)


def _close_request_bodies(schemas: dict[str, Any]) -> None:
    for struct in _structs():
        schema = schemas.get(struct.__name__)
        if not (struct.__struct_config__.forbid_unknown_fields and isinstance(schema, Schema)):
            continue
        schema.additional_properties = False
        _bound_map_keys(struct, schema)
        _bound_list_items(struct, schema)


UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _key_schema(key_type: Any) -> Schema | None:
    if isinstance(key_type, msgspec.inspect.UUIDType):
        return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID, pattern=UUID_PATTERN)
    if isinstance(key_type, msgspec.inspect.StrType) and (key_type.min_length or key_type.max_length):
        return Schema(
            type=OpenAPIType.STRING,
            min_length=key_type.min_length,
            max_length=key_type.max_length,
            pattern=key_type.pattern,
        )
    return None


def _bound_map_keys(struct: type[msgspec.Struct], schema: Schema) -> None:
    """Map fields whose keys are bounded or typed (``credentials``, ``member_mapping``), and
    their values' lengths: Litestar's schema drops ``propertyNames`` and value bounds."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        field_type = field.type
        if isinstance(field_type, msgspec.inspect.Metadata):
            field_type = field_type.type
        target = (schema.properties or {}).get(field.encode_name)
        if isinstance(field_type, msgspec.inspect.DictType) and isinstance(target, Schema):
            keys = _key_schema(field_type.key_type)
            if keys is not None:
                target.property_names = keys
            values, value_schema = field_type.value_type, target.additional_properties
            if isinstance(values, msgspec.inspect.StrType) and isinstance(value_schema, Schema):
                value_schema.min_length = values.min_length
                value_schema.max_length = values.max_length


def _string_bounds(string_type: Any, target: Any) -> None:
    if not (isinstance(string_type, msgspec.inspect.StrType) and isinstance(target, Schema)):
        return
    if string_type.pattern is not None:
        target.pattern = string_type.pattern
    if string_type.min_length is not None:
        target.min_length = string_type.min_length
    if string_type.max_length is not None:
        target.max_length = string_type.max_length


def _bound_list_items(struct: type[msgspec.Struct], schema: Schema) -> None:
    """List fields whose items are bounded strings (a policy's ``holidays``) or fixed-length
    tuples of them (a business-hours window, ``["08:00", "18:00"]``): Litestar's schema
    drops an item's pattern and a tuple's length, so a fuzzer (or a client) would take
    ``["x"]`` for a window that decoding refuses."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        field_type = field.type
        if isinstance(field_type, msgspec.inspect.Metadata):
            field_type = field_type.type
        target = (schema.properties or {}).get(field.encode_name)
        if not (isinstance(field_type, msgspec.inspect.ListType) and isinstance(target, Schema)):
            continue
        item_type, items = field_type.item_type, target.items
        if isinstance(item_type, msgspec.inspect.Metadata):
            item_type = item_type.type
        _string_bounds(item_type, items)
        if (
            isinstance(item_type, msgspec.inspect.TupleType)
            and isinstance(items, Schema)
            and items.prefix_items
        ):
            items.min_items = items.max_items = len(item_type.item_types)
            for part_type, part in zip(item_type.item_types, items.prefix_items, strict=False):
                _string_bounds(
                    part_type.type if isinstance(part_type, msgspec.inspect.Metadata) else part_type, part
                )


def complete_document(document: OpenAPI) -> None:
    """Adds the problem responses to every operation of ``document``, closes the request
    bodies that refuse unknown fields; in place."""
    if document.components is None:
        document.components = Components()
    schemas = document.components.schemas if document.components.schemas is not None else {}
    _close_request_bodies(schemas)
    schemas[PROBLEM_SCHEMA_NAME] = PROBLEM_SCHEMA
    document.components.schemas = schemas
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is not None:
                _complete_operation(method, path, operation)


def document_problems(app: Litestar) -> None:
    """``on_startup``: complete the document before the first request can read it."""
    complete_document(app.openapi_schema)
