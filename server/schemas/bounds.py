"""Bounded field types shared by the request bodies.

Column widths come from ``tables.limits`` so an accepted value always fits its column;
the rest are our limits for free text, generous for people and small enough that one
request cannot hold a worker for long.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from tables.limits import EMAIL_MAX, NAME_MAX, PSA_ID_MAX, SHORT_TEXT_MAX, SLACK_USER_ID_MAX, URL_MAX

ENGINEER_NOTES_MAX = 4_000
RESOLUTION_NOTE_MAX = 4_000
PROBLEM_SUMMARY_MAX = 2_000
PROBLEM_DOMAIN_MAX = 200
STEP_TEXT_MAX = 10_000
MESSAGE_CONTENT_MAX = 20_000
MESSAGE_ROLE_MAX = 32
BRANCH_LABEL_MAX = 200
STATUS_REASON_MAX = 2_000
STEPS_MAX = 500
BRANCHES_MAX = 200
MESSAGES_MAX = 1_000
CREDENTIAL_FIELDS_MAX = 20
CREDENTIAL_NAME_MAX = 64
CREDENTIAL_VALUE_MAX = 4_096
MEMBER_MAPPING_MAX = 2_000
ORDER_MAX = 2**31 - 1  # an integer column
SIGNING_SECRET_MIN = 16
SIGNING_SECRET_MAX = 256  # Slack's are 32 hex digits; room for a change of format

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
# Control characters are named as well as \s: Python's \s (what msgspec checks) also
# takes \x1c-\x1f and \x85, a JSON-Schema (ECMA) client's does not, and the published
# pattern must mean the same in both.
_PLAIN = r"[^@\s\x00-\x1f\x7f-\x9f]"
Email = Annotated[str, msgspec.Meta(max_length=EMAIL_MAX, pattern=rf"^{_PLAIN}+@{_PLAIN}+$")]
# A host name, or an IPv6 literal in brackets right after the scheme; whether Baton may
# call it is the destination rule's to say (actors/outbound.py: a 422 naming the rule).
_HOST_CHAR = r"[^\s/\[\]\x00-\x1f\x7f-\x9f]"
Url = Annotated[
    str, msgspec.Meta(max_length=URL_MAX, pattern=rf"^https?://(?:\[[0-9A-Fa-f:.]+\]|{_HOST_CHAR}+)")
]
ShortText = Annotated[str, msgspec.Meta(max_length=SHORT_TEXT_MAX)]
PsaId = Annotated[str, msgspec.Meta(min_length=1, max_length=PSA_ID_MAX)]
EngineerNotes = Annotated[str, msgspec.Meta(max_length=ENGINEER_NOTES_MAX)]
ResolutionNote = Annotated[str, msgspec.Meta(max_length=RESOLUTION_NOTE_MAX)]
ProblemSummary = Annotated[str, msgspec.Meta(max_length=PROBLEM_SUMMARY_MAX)]
ProblemDomain = Annotated[str, msgspec.Meta(max_length=PROBLEM_DOMAIN_MAX)]
StepText = Annotated[str, msgspec.Meta(max_length=STEP_TEXT_MAX)]
MessageContent = Annotated[str, msgspec.Meta(max_length=MESSAGE_CONTENT_MAX)]
MessageRole = Annotated[str, msgspec.Meta(min_length=1, max_length=MESSAGE_ROLE_MAX)]
BranchLabel = Annotated[str, msgspec.Meta(max_length=BRANCH_LABEL_MAX)]
StatusReason = Annotated[str, msgspec.Meta(max_length=STATUS_REASON_MAX)]
Order = Annotated[int, msgspec.Meta(ge=0, le=ORDER_MAX)]
CredentialName = Annotated[str, msgspec.Meta(min_length=1, max_length=CREDENTIAL_NAME_MAX)]
CredentialValue = Annotated[str, msgspec.Meta(max_length=CREDENTIAL_VALUE_MAX)]
# A Slack member id: "U" (or "W", Enterprise Grid) and upper-case alphanumerics.
SlackUserId = Annotated[str, msgspec.Meta(max_length=SLACK_USER_ID_MAX, pattern=r"^[UW][A-Z0-9]{2,30}$")]
# A Slack app's signing secret: printable ASCII without spaces, so no pasted line break or
# quote can ride along. msgspec's error names the field and the pattern, never the value.
SigningSecret = Annotated[
    str,
    msgspec.Meta(min_length=SIGNING_SECRET_MIN, max_length=SIGNING_SECRET_MAX, pattern=r"^[\x21-\x7e]+$"),
]
