"""Background work: the Dramatiq broker and its actors.

``dramatiq actors`` imports this package: the broker first, then every actor module.
"""

from actors import broker as broker
from actors import maintenance as maintenance
