"""Storage of the evidence log through SQLAlchemy: SQLite in WAL mode (default) or PostgreSQL.

Every commit is durable before it returns: SQLite runs with `synchronous=FULL` (the WAL is fsync'd at
each commit); PostgreSQL keeps its default `synchronous_commit=on`.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's fast rowid

leaves = Table(
    "leaves",
    metadata,
    Column("seq", _Id, primary_key=True, autoincrement=False),
    Column("record_hash", LargeBinary(32), nullable=False, unique=True),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("entry", LargeBinary, nullable=False),
    Column("project_id", String(128), nullable=False),
    Column("project_seq", BigInteger, nullable=False),
    Column("batch_start", BigInteger, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Index("ix_leaves_project", "project_id", "project_seq", unique=True),
)

# Perfect subtree roots, keyed by node_id(level, index).
nodes = Table(
    "nodes",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

submitters = Table(
    "submitters",
    metadata,
    Column("submitter_id", String(128), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("registered_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)

# Openings of personal-data commitments. Never part of the log or the ledger.
disclosures = Table(
    "disclosures",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("field", String(128), primary_key=True),
    Column("salt", LargeBinary, nullable=False),
    Column("value", Text, nullable=False),
)

# Each project's number of records and last leaf, kept by every append (under the sequencer lock) so that
# a group reads only its own projects' rows and a checkpoint commits to every head without a scan of the
# leaves. The audit checks it against the leaves.
project_heads = Table(
    "project_heads",
    metadata,
    Column("project_id", String(128), primary_key=True),
    Column("records", BigInteger, nullable=False),
    Column("last_leaf", BigInteger, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", _Id, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", String(40), nullable=False),
)

anchors = Table(
    "anchors",
    metadata,
    Column("size", _Id, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("ledger", String(16), nullable=False),
    Column("tx_id", String(128), nullable=False),
    Column("anchored_at", String(40), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("evidence", Text, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

LEVEL_SHIFT = 42  # room for 2**42 leaves


def node_id(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


SEQUENCER = "sequencer"


def ensure_sequencer(engine: Engine) -> None:
    """Create the row whose lock serialises appends (and key changes) across notary processes."""
    with engine.connect() as conn:
        if conn.execute(select(settings.c.name).where(settings.c.name == SEQUENCER)).first() is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(settings).values(name=SEQUENCER, value="append lock"))
    except IntegrityError:
        pass  # another process created it first


def lock_sequencer(conn: Connection) -> None:
    """Take the append lock until the transaction ends. The first statement of the transaction must be
    this write: SQLite then starts the transaction holding its write lock with a fresh snapshot (waiting
    up to busy_timeout for another writer), PostgreSQL holds the row lock, and every read that follows
    sees what the previous append committed."""
    conn.exec_driver_sql(_LOCK_SEQUENCER)


_LOCK_SEQUENCER = f"UPDATE settings SET value = value WHERE name = '{SEQUENCER}'"


def mark(conn: Connection) -> str:
    """The driver's parameter marker: the append path's statements are written for the driver, since
    building them through SQLAlchemy cost more than running them."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def marks(conn: Connection, count: int) -> str:
    return ", ".join(mark(conn) for _ in range(count))


def rows_where_in(conn: Connection, sql: str, values: list[Any]) -> list[Any]:
    """Run `sql`, whose `{in}` stands for the markers of `values` (as in `... WHERE x IN ({in})`)."""
    if not values:
        return []
    return list(conn.exec_driver_sql(sql.format(**{"in": marks(conn, len(values))}), tuple(values)).all())


class AppendLock:
    """Orders appenders before they reach the database. SQLite's own lock waits by polling with growing
    sleeps, which idles a waiting worker long after the lock is free; an OS file lock wakes it at once.
    A thread lock comes first because flock does not exclude threads sharing one open file. PostgreSQL
    queues row-lock waiters itself, so there only the sequencer row is used."""

    def __init__(self, engine: Engine) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if database and database != ":memory:":
            self._fd = os.open(f"{database}.append-lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._fd is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows through the driver (COPY on PostgreSQL, executemany on SQLite): the append hot path,
    where SQLAlchemy's per-row parameter processing cost more than the database itself."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name == "postgresql":
        # COPY streams the rows in one statement; executemany sends one bound statement per row.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))
        return
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks(conn, len(columns))})"
    conn.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # A bigger page cache keeps the random-keyed record_hash index in memory; fewer, larger WAL
    # checkpoints keep appends from stalling on one every megabytes.
    cursor.execute("PRAGMA cache_size=-131072")
    cursor.execute("PRAGMA wal_autocheckpoint=16384")
    cursor.close()


def open_engine(url: str) -> Engine:
    """Open (and create if needed) the log database at a SQLAlchemy URL."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine
