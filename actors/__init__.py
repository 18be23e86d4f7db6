"""Background work: the Dramatiq broker and its actors.

``dramatiq actors`` imports this package: the broker, then every actor module (each
declares its actors on ``actors.broker.broker`` explicitly, so the order is free). The
web process imports it too, to hand outbox jobs to these actors by name.
"""

from actors import announce as announce
from actors import assessment as assessment
from actors import briefing as briefing
from actors import broker as broker
from actors import chat as chat
from actors import email as email
from actors import maintenance as maintenance
from actors import outbox as outbox
from actors import outcomes as outcomes
from actors import reminder as reminder
from actors.psa import push as push
from actors.tiers import loop as loop
from actors.tiers import messages as messages
