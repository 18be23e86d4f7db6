"""Baton's data: Piccolo tables and their migrations. Imports nothing of ours."""

from tables.accounts import Account, Team, User
from tables.delivery import AppNotification, Delivery, Outbox
from tables.handoffs import SessionHandoff
from tables.integrations import NotificationChannel, PsaConnection
from tables.sessions import AiSession, SessionBranch, SessionStep

__all__ = [
    "Account",
    "AiSession",
    "AppNotification",
    "Delivery",
    "NotificationChannel",
    "Outbox",
    "PsaConnection",
    "SessionBranch",
    "SessionHandoff",
    "SessionStep",
    "Team",
    "User",
]
