"""The metadata catalog (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL at scale."""

from assethub.catalog.db import Catalog
from assethub.catalog.models import (
    ApiToken,
    Asset,
    AuditEvent,
    ConsoleSession,
    Evaluation,
    Folder,
    Follow,
    GitCredential,
    Group,
    JobToken,
    Membership,
    Publication,
    Run,
    Service,
    Share,
    User,
)

__all__ = [
    "ApiToken",
    "Asset",
    "AuditEvent",
    "Catalog",
    "ConsoleSession",
    "Evaluation",
    "Folder",
    "Follow",
    "GitCredential",
    "Group",
    "JobToken",
    "Membership",
    "Publication",
    "Run",
    "Service",
    "Share",
    "User",
]
