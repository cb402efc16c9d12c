"""Connecting to the catalog and bringing its schema up to date with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Catalog:
    """A catalog database: ``sqlite:///path.db`` (default) or ``postgresql+psycopg://...``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Single-row reads made while a session may be open in the same thread (storage's
        # locator) get a small pool of their own: borrowing a second connection from the main
        # pool could wait forever once every connection is held by a thread that waits too.
        # Both engines see the same committed rows (SQLite in WAL mode, where readers never
        # wait for a writer, or PostgreSQL; an in-memory SQLite is one database per connection
        # and no catalog for a threaded server anyway).
        # Autocommit and no ping: a read is one statement and one round trip.
        self._lookup_engine = _engine(url, pool_size=2, max_overflow=6, pool_pre_ping=False,
                                      isolation_level="AUTOCOMMIT")

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        cfg = _alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back on an exception."""
        with self._sessions() as s, s.begin():
            yield s

    def lookup(self, statement: Executable) -> Any:
        """One short read of committed rows (the first column of the first row, or None).

        It runs on a pool of its own, so it may be called while a :meth:`session` is open in
        the same thread, and it does not see that session's changes.
        """
        for attempt in (1, 2):
            try:
                with self._lookup_engine.connect() as c:
                    return c.scalar(statement)
            except DBAPIError as e:  # a connection the server dropped: the pool drops it too
                if attempt == 2 or not e.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        self._lookup_engine.dispose()

    def __repr__(self) -> str:  # the URL may hold a password
        return f"Catalog({self.engine.url.render_as_string(hide_password=True)!r})"


def _engine(url: str, **options: Any) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True, **options}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
