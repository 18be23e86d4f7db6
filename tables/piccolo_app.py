"""The Piccolo app that owns every Baton table and its migrations."""

import os

from piccolo.conf.apps import AppConfig
from piccolo.table import Table, sort_table_classes

from tables.accounts import Account, Team, User
from tables.delivery import AppNotification, Delivery, Outbox
from tables.handoffs import SessionHandoff
from tables.integrations import NotificationChannel, PsaConnection
from tables.policies import EscalationPolicy
from tables.sessions import AiSession, SessionBranch, SessionStep

TABLE_CLASSES: list[type[Table]] = [
    Account,
    Team,
    User,
    NotificationChannel,
    PsaConnection,
    EscalationPolicy,
    AiSession,
    SessionStep,
    SessionBranch,
    SessionHandoff,
    Delivery,
    Outbox,
    AppNotification,
]

APP_CONFIG = AppConfig(
    app_name="tables",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=TABLE_CLASSES,
)


def all_tables() -> list[type[Table]]:
    """Every table, children before parents.

    Deleting rows in this order never trips a foreign key, and the list as a whole can
    be given to one ``TRUNCATE`` (which needs every referencing table named).
    """
    return list(reversed(sort_table_classes(list(TABLE_CLASSES))))
