"""PSA ticket notes: one adapter per PSA, and the push of an escalation's documentation."""

from actors.psa.autotask import Autotask
from actors.psa.base import Adapter, Note, PsaConnectionInfo, PsaError
from actors.psa.connectwise import ConnectWise
from actors.psa.halopsa import HaloPsa

ADAPTERS: dict[str, Adapter] = {
    "connectwise": ConnectWise(),
    "autotask": Autotask(),
    "halopsa": HaloPsa(),
}

__all__ = ["ADAPTERS", "Adapter", "Note", "PsaConnectionInfo", "PsaError"]
