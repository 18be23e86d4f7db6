"""Column widths, shared with the API schemas so oversize text is a 4xx, never a 500.

The wire fixes only ``confidence_tier`` and a branch's ``status`` (64); the rest are
ours. Long free text (summaries, notes, reasons, messages) is ``Text``, unbounded here:
the API decides how much it accepts.
"""

SHORT_TEXT_MAX = 64  # confidence_tier, a branch's status (the wire's bound)
ENUM_MAX = 16  # every enum-like column; the longest value is "not_applicable"
NAME_MAX = 200  # account, team and user names
EMAIL_MAX = 320  # RFC 5321: 64 local + @ + 255 domain
PSA_ID_MAX = 128  # a PSA's ticket or note id (numbers today, strings tomorrow)
IDEMPOTENCY_KEY_MAX = 255
FINGERPRINT_MAX = 64  # a sha256 hex digest
KIND_MAX = 64  # a notification kind such as "session.escalated"
CHANNEL_MAX = 32  # a delivery channel such as "email"
ACTOR_NAME_MAX = 128  # a Dramatiq actor name
URL_MAX = 2048
SLACK_USER_ID_MAX = 32  # Slack member ids are "U" or "W" and a few alphanumerics
