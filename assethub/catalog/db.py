"""Connecting to the catalog and bringing its schema up to date with Alembic."""

from __future__ import annotations

import hashlib
import logging
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Executable, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: the PostgreSQL channel on which replicas tell each other what changed
NOTIFY_CHANNEL = "assethub_changes"
#: what a subscriber hears when it may have missed messages (its listening connection was
#: lost and is back): forget everything cached
RECONNECTED = "*"
_RETRY_SECONDS = 1.0
_log = logging.getLogger("assethub.catalog")

Subscriber = Callable[[str, str], None]


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
        self._subscribers: list[Subscriber] = []
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._listen_fd: int | None = None  # the listening connection's socket, while it listens

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Where every :meth:`session` comes from: listen to its events to see every write."""
        return self._sessions

    # -- telling every server on this catalog what changed --------------------------------------
    def publish(self, channel: str, payload: str = "") -> None:
        """Tell every subscriber of every process on this catalog that ``channel`` changed:
        this process's subscribers at once (before this returns), and on PostgreSQL the other
        servers' through NOTIFY. On SQLite there is one server and only the local call."""
        for callback in list(self._subscribers):
            callback(channel, payload)
        if self.is_postgresql:
            try:
                with self._lookup_engine.connect() as c:
                    c.execute(text("SELECT pg_notify(:ch, :msg)"),
                              {"ch": NOTIFY_CHANNEL, "msg": f"{channel}\n{payload}"[:7000]})
            except DBAPIError as e:  # the change is made; the others' caches expire on their own
                _log.warning("could not tell the other servers that %s changed: %s", channel,
                             type(e).__name__)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(channel, payload)`` for each :meth:`publish` of any process on this
        catalog, and ``callback(RECONNECTED, "")`` whenever messages may have been missed.
        On PostgreSQL a daemon thread LISTENs on a connection of its own, reconnecting when
        it is lost."""
        self._subscribers.append(callback)
        if self.is_postgresql and self._listener is None:
            self._stop.clear()
            self._listener = threading.Thread(target=self._listen, daemon=True,
                                              name="catalog-listener")
            self._listener.start()

    def changes_pending(self) -> bool:
        """Whether a cache kept by a subscriber may be stale beyond what it has heard: on
        PostgreSQL, while no connection listens (lost, or not yet back) or when a message has
        arrived that the listener has not delivered yet. A cache answers only when this is False.
        Always False on SQLite (one server: :meth:`publish` tells its subscribers at once)."""
        if not self.is_postgresql:
            return False
        fd = self._listen_fd
        if fd is None:
            return True
        try:
            return bool(select.select([fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def _dsn(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _deliver(self, channel: str, payload: str) -> None:
        for callback in list(self._subscribers):
            try:
                callback(channel, payload)
            except Exception:  # one subscriber's failure does not stop the others
                _log.exception("a catalog subscriber failed on %s", channel)

    def _listen(self) -> None:
        import psycopg

        lost = ""
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._listen_fd = conn.pgconn.socket
                    # listening again: what changed while we were not is unknown
                    self._deliver(RECONNECTED, "")
                    if lost:
                        _log.warning("listening to the catalog again after: %s", lost)
                        lost = ""
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            channel, _, payload = n.payload.partition("\n")
                            self._deliver(channel, payload)
            except Exception as e:  # the connection is lost: clear and listen again
                self._listen_fd = None
                if self._stop.is_set():
                    return
                why = f"{type(e).__name__}: {e}"
                if not lost:
                    _log.warning("lost the catalog's change notifications (%s); retrying", why)
                lost = why
                self._deliver(RECONNECTED, "")
                self._stop.wait(_RETRY_SECONDS)

    # -- one leader among the servers on this catalog -------------------------------------------
    @contextmanager
    def leadership(self, name: str) -> Iterator[Callable[[], bool]]:
        """Try to become the one holder of ``name`` among the processes on this catalog; yields
        a check that is true while this process holds it (False at once if another does).

        On PostgreSQL: a session advisory lock on a connection of its own, held while the block
        runs; the check pings that connection, so losing it (and with it the lock) is noticed.
        On SQLite (one server) the holder is always this process.
        """
        if not self.is_postgresql:
            yield lambda: True
            return
        import psycopg

        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn = psycopg.connect(self._dsn(), autocommit=True, connect_timeout=10)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            held = bool(row and row[0])

            def holding() -> bool:
                if not held:
                    return False
                try:
                    conn.execute("SELECT 1").fetchone()
                    return True
                except psycopg.Error:
                    return False  # the connection, and with it the lock, is gone

            yield holding
        finally:
            conn.close()  # ends the session: PostgreSQL releases its advisory locks

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
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None
        self.engine.dispose()
        self._lookup_engine.dispose()

    def __repr__(self) -> str:  # the URL may hold a password
        return f"Catalog({self.engine.url.render_as_string(hide_password=True)!r})"


def _engine(url: str, **options: Any) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True, **options}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        # a file of this process's own: no server to drop the connection, nothing to ping
        kwargs["pool_pre_ping"] = False
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: a commit appends to the log without waiting for the disk
    # (the log is synced at checkpoints). Nothing committed is lost when a process crashes;
    # a power cut or kernel panic may lose the last transactions, never the database's
    # consistency. FULL's fsync per commit cost each audited request 1.3-1.7 ms here.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
