"""Who is calling: principals with a role and bindings, and requests signed with their registered keys.

Every request to the notary and to the hub (but the few public ones) carries an RFC 9421 HTTP Message
Signature made with the caller's registered ECDSA P-256 or Ed25519 key. It covers the method, authority,
path, query and an RFC 9530 Content-Digest of the body, with the time it was made (`created`, accepted
within `WINDOW`) and a one-time `nonce` (a replay inside the window is refused). The key id is the
principal id; the role and the bindings (venue, device function, granted projects) come from the
registry, never from the request. Signed requests rather than bearer tokens because a government
deployment already issues keys from the province's CA to devices and offices (secure elements, USB keys),
a signature proves possession without sending a secret that a log or a proxy could leak, and the same key
signs the evidence. Mutual TLS was the alternative, but uvicorn does not hand the client certificate to
the application, so the role could not be bound to it without a separate proxy.

`Permissions` turns a service's role × action table into the FastAPI dependencies both services use;
`check_standing` is the re-check of a principal's binding where something confidential is handed out;
`verify_profile` verifies the one signature profile our clients make in a single pass, leaving every other
request to the http-message-signatures library.
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import http_sf
import httpx
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.structures import get_header_fields
from starlette.exceptions import HTTPException
from starlette.requests import Request

from verifier.errors import MalformedInput
from verifier.strict import parse_json

TAG = "bidtrace"
WINDOW = timedelta(seconds=120)
COVERED = ("@method", "@authority", "@path", "@query")
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
MIN_SECRET_BYTES = 32  # a key file shorter than any real PEM key is a mistake, never something to match


class Role(StrEnum):
    HUB_OPERATOR = "hub_operator"  # the province's coordination hub and its operators
    VENUE_OPERATOR = "venue_operator"  # bound to one venue
    DEVICE = "device"  # bound to one venue and one function
    SUPERVISOR = "supervisor"
    COURT = "court"  # a court or a complainant, bound to the projects it was granted
    BIDDER = "bidder"  # a bidder (投标人), objecting or complaining with its own key; bound to the projects it bids on
    TENDERER = "tenderer"  # a tenderer or its agency (招标人/代理机构), answering objections; bound to its projects
    NODE_OPERATOR = "node_operator"
    NOTARY_ADMIN = "notary_admin"


PUBLIC = "public"  # the anonymous caller: not a registered role
PROJECT_BOUND = frozenset({Role.COURT, Role.BIDDER, Role.TENDERER})  # roles granted projects, and only those

DEVICE_FUNCTIONS: dict[str, frozenset[str]] = {
    "recorder": frozenset({"recording_segment", "media_arrival", "incident"}),
    "checkin": frozenset({"checkin", "incident"}),
    "signing_pad": frozenset({"signature", "incident"}),
}


class AccessDenied(Exception):
    """A request refused for who made it; `status` is 401 (not authenticated) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AccessConfigError(ValueError):
    """An access configuration that cannot be used; the message names the entry and the field."""


PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def load_public_key(pem: str, who: str) -> PublicKey:
    if len(pem.strip()) < MIN_SECRET_BYTES:
        raise AccessConfigError(f"{who}: public_key is empty or too short to be a PEM key")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise AccessConfigError(f"{who}: public_key is not a PEM SubjectPublicKeyInfo ({exc})") from exc
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise AccessConfigError(f"{who}: public_key must be ECDSA P-256 or Ed25519")


@dataclass(frozen=True)
class Principal:
    """A registered caller. `venue_id` binds venue operators and devices; `function` binds devices;
    `projects` lists what a court or complainant was granted; `endpoints` are a supervisor's registered
    webhook URLs (the only places the hub will ever push to)."""

    principal_id: str
    role: Role
    public_key: str
    venue_id: str | None = None
    function: str | None = None
    projects: frozenset[str] = field(default_factory=frozenset)
    endpoints: frozenset[str] = field(default_factory=frozenset)

    def key(self) -> PublicKey:
        return load_public_key(self.public_key, f"principal {self.principal_id}")

    def describe(self) -> str:
        bound = [f"venue {self.venue_id}"] if self.venue_id else []
        bound += [f"function {self.function}"] if self.function else []
        bound += [f"projects {', '.join(sorted(self.projects))}"] if self.projects else []
        return f"{self.principal_id} ({self.role}{'; ' + ', '.join(bound) if bound else ''})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"principal_id": self.principal_id, "role": str(self.role),
                               "public_key": self.public_key}
        if self.venue_id:
            out["venue_id"] = self.venue_id
        if self.function:
            out["function"] = self.function
        if self.projects:
            out["projects"] = sorted(self.projects)
        if self.endpoints:
            out["endpoints"] = sorted(self.endpoints)
        return out

    @classmethod
    def parse(cls, value: Any, where: str) -> "Principal":
        """Strictly: known keys only, a known role, the bindings that role needs and no others."""
        import re

        if not isinstance(value, dict):
            raise AccessConfigError(f"{where}: a principal is a JSON object")
        allowed = {"principal_id", "role", "public_key", "venue_id", "function", "projects", "endpoints"}
        extra = set(value) - allowed
        if extra:
            raise AccessConfigError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        pid = value.get("principal_id")
        if not isinstance(pid, str) or not re.fullmatch(_ID, pid):
            raise AccessConfigError(f"{where}: principal_id must match {_ID}")
        where = f"{where} ({pid})"
        try:
            role = Role(str(value.get("role")))
        except ValueError:
            raise AccessConfigError(f"{where}: role must be one of {', '.join(r.value for r in Role)}") from None
        pem = value.get("public_key")
        if not isinstance(pem, str):
            raise AccessConfigError(f"{where}: public_key must be a PEM string")
        load_public_key(pem, where)
        venue, function, projects = value.get("venue_id"), value.get("function"), value.get("projects", [])
        if role in (Role.VENUE_OPERATOR, Role.DEVICE):
            if not isinstance(venue, str) or not re.fullmatch(_ID, venue):
                raise AccessConfigError(f"{where}: a {role} is bound to one venue: venue_id is missing or invalid")
        elif venue is not None:
            raise AccessConfigError(f"{where}: a {role} is not bound to a venue; remove venue_id")
        if role is Role.DEVICE:
            if function not in DEVICE_FUNCTIONS:
                raise AccessConfigError(f"{where}: a device is bound to one function: {', '.join(DEVICE_FUNCTIONS)}")
        elif function is not None:
            raise AccessConfigError(f"{where}: only devices have a function; remove function")
        if not isinstance(projects, list) or not all(isinstance(p, str) and re.fullmatch(_ID, p) for p in projects):
            raise AccessConfigError(f"{where}: projects must be a list of project ids")
        if role in PROJECT_BOUND and not projects:
            raise AccessConfigError(f"{where}: a {role} must be bound to at least one project")
        if role not in PROJECT_BOUND and projects:
            raise AccessConfigError(f"{where}: only a court, a bidder or a tenderer is bound to projects")
        endpoints = value.get("endpoints", [])
        if not isinstance(endpoints, list) or not all(isinstance(u, str) and _endpoint(u) for u in endpoints):
            raise AccessConfigError(f"{where}: endpoints must be a list of http(s) URLs with a host, no credentials")
        if role is not Role.SUPERVISOR and endpoints:
            raise AccessConfigError(f"{where}: only a supervisor registers webhook endpoints")
        return cls(pid, role, pem, venue, function, frozenset(projects), frozenset(endpoints))


def _endpoint(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        return False
    return (len(url) <= 2000 and parts.scheme in ("http", "https") and bool(parts.hostname)
            and parts.username is None and parts.password is None and url.isascii() and " " not in url)


class Registry:
    """The principals a service knows, by id, in memory (the hub's, from its access configuration).
    Thread-safe; changes go through `bind` and `revoke`."""

    def __init__(self, principals: Iterable[Principal] = ()) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Principal] = {}
        self._keys: dict[str, PublicKey] = {}
        self._revoked: set[tuple[str, str]] = set()
        for p in principals:
            self.bind(p)

    def was_revoked(self, principal: Principal) -> bool:
        """Whether this principal's key was revoked under its id (a revoked key stays revoked)."""
        with self._lock:
            return (principal.principal_id, key_digest(principal.public_key)) in self._revoked

    def bind(self, principal: Principal) -> bool:
        """Add a principal; True if it is new, False if it was already bound exactly so."""
        key = principal.key()
        if self.was_revoked(principal):
            raise AccessConfigError(_revoked_message(principal))
        with self._lock:
            existing = self._by_id.get(principal.principal_id)
            if existing == principal:
                return False
            if existing is not None:
                raise AccessConfigError(f"principal {principal.principal_id} is already bound as "
                                        f"{existing.describe()}; revoke it first")
            self._by_id[principal.principal_id] = principal
            self._keys[principal.public_key] = key
            return True

    def revoke(self, principal_id: str) -> Principal | None:
        with self._lock:
            principal = self._by_id.pop(principal_id, None)
            if principal is not None:
                self._revoked.add((principal_id, key_digest(principal.public_key)))
            return principal

    def get(self, principal_id: str) -> Principal | None:
        with self._lock:
            return self._by_id.get(principal_id)

    def standing(self, principal: Principal) -> bool:
        """Whether `principal` is still bound exactly so: not revoked, not re-bound with another key or
        other bindings since its request was authenticated."""
        return self.get(principal.principal_id) == principal

    def key_of(self, principal: Principal) -> PublicKey:
        with self._lock:
            key = self._keys.get(principal.public_key)
            if key is None:
                key = self._keys[principal.public_key] = principal.key()
            return key

    def all(self) -> list[Principal]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda p: p.principal_id)


def key_digest(public_pem: str) -> str:
    """The SHA-256 of a principal's key PEM: what registry records name and revocations remember."""
    import hashlib

    return hashlib.sha256(public_pem.encode()).hexdigest()


def registry_payload(action: str, principal: Principal, by: str) -> dict[str, Any]:
    """The payload of a `registry` record binding or revoking `principal`: who did it (`by`), the role and
    bindings, and the SHA-256 of the key (the key itself stays out of the log's free text)."""
    bindings = {k: v for k, v in principal.to_json().items() if k not in ("principal_id", "public_key")}
    return {"action": action, "subject": principal.principal_id, "by": by,
            "digest": key_digest(principal.public_key), **bindings}


def _revoked_message(principal: Principal) -> str:
    return (f"the key of principal {principal.principal_id} was revoked and cannot be bound again; "
            f"bind a new key")


class DatabaseRegistry(Registry):
    """Principals in a database (the notary's, the hub's), so that every worker process sees a binding or a
    revocation at once and a restart keeps both. Parsed keys are cached by PEM (a cache, not state)."""

    def __init__(self, engine: Any, tables: tuple[Any, Any] | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.principals, self.revocations = tables if tables is not None else (principals, revocations)
        self._endpoints = "endpoints" in self.principals.c

    def bind(self, principal: Principal) -> bool:
        from sqlalchemy import insert

        principal.key()
        with self.engine.begin() as conn:
            if self._was_revoked(conn, principal):
                raise AccessConfigError(_revoked_message(principal))
            existing = self._load(conn, principal.principal_id)
            if existing == principal:
                return False
            if existing is not None:
                raise AccessConfigError(f"principal {principal.principal_id} is already bound as "
                                        f"{existing.describe()}; revoke it first")
            values: dict[str, Any] = dict(
                principal_id=principal.principal_id, role=str(principal.role), public_key=principal.public_key,
                venue_id=principal.venue_id, function=principal.function,
                projects=json.dumps(sorted(principal.projects)))
            if self._endpoints:
                values["endpoints"] = json.dumps(sorted(principal.endpoints))
            conn.execute(insert(self.principals).values(**values))
        return True

    def revoke(self, principal_id: str) -> Principal | None:
        from sqlalchemy import delete, insert

        with self.engine.begin() as conn:
            existing = self._load(conn, principal_id)
            conn.execute(delete(self.principals).where(self.principals.c.principal_id == principal_id))
            if existing is not None and not self._was_revoked(conn, existing):
                conn.execute(insert(self.revocations).values(
                    principal_id=principal_id, key_digest=key_digest(existing.public_key), revoked_at=time.time()))
        return existing

    def was_revoked(self, principal: Principal) -> bool:
        with self.engine.connect() as conn:
            return self._was_revoked(conn, principal)

    def _was_revoked(self, conn: Any, principal: Principal) -> bool:
        from sqlalchemy import select

        r = self.revocations
        return conn.execute(select(r.c.principal_id).where(
            r.c.principal_id == principal.principal_id,
            r.c.key_digest == key_digest(principal.public_key))).first() is not None

    def _load(self, conn: Any, principal_id: str) -> Principal | None:
        from sqlalchemy import select

        row = conn.execute(select(self.principals).where(self.principals.c.principal_id == principal_id)).first()
        if row is None:
            return None
        endpoints = frozenset(json.loads(row.endpoints)) if self._endpoints else frozenset()
        return Principal(row.principal_id, Role(row.role), row.public_key, row.venue_id, row.function,
                         frozenset(json.loads(row.projects)), endpoints)

    def get(self, principal_id: str) -> Principal | None:
        with self.engine.connect() as conn:
            return self._load(conn, principal_id)

    def all(self) -> list[Principal]:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            ids = conn.execute(select(self.principals.c.principal_id)
                               .order_by(self.principals.c.principal_id)).scalars()
            return [p for p in (self._load(conn, i) for i in list(ids)) if p is not None]


def registry_tables(metadata: Any, prefix: str = "", endpoints: bool = False) -> tuple[Any, Any]:
    """The tables of a principal registry in `metadata`: the principals bound, and the keys revoked under a
    principal id (a revoked key is never bound again, by the API or by a restart from an access configuration
    that still names it). The hub's registry keeps its supervisors' webhook endpoints too."""
    from sqlalchemy import Column, Float, String, Table, Text

    columns = [
        Column("principal_id", String(128), primary_key=True),
        Column("role", String(32), nullable=False),
        Column("public_key", Text, nullable=False),
        Column("venue_id", String(128)),
        Column("function", String(32)),
        Column("projects", Text, nullable=False),
    ]
    if endpoints:
        columns.append(Column("endpoints", Text, nullable=False, default="[]"))
    bound = Table(f"{prefix}principals", metadata, *columns)
    revoked = Table(
        f"{prefix}principal_revocations", metadata,
        Column("principal_id", String(128), primary_key=True),
        Column("key_digest", String(64), primary_key=True),
        Column("revoked_at", Float, nullable=False),
    )
    return bound, revoked


def _notary_tables() -> tuple[Any, Any]:
    from notary import store

    return registry_tables(store.metadata)


principals, revocations = _notary_tables()


def load_access_config(path: Path) -> list[Principal]:
    """Read an access configuration: `{"principals": [...]}`. Refuses an empty or malformed file by name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AccessConfigError(f"access configuration {path} cannot be read ({exc.strerror})") from exc
    if len(data.strip()) < MIN_SECRET_BYTES:
        raise AccessConfigError(f"access configuration {path} is empty or too short")
    try:
        doc = parse_json(data, f"access configuration {path}")
    except MalformedInput as exc:
        raise AccessConfigError(str(exc)) from exc
    if not isinstance(doc, dict) or set(doc) != {"principals"} or not isinstance(doc["principals"], list):
        raise AccessConfigError(f"access configuration {path} must be {{\"principals\": [...]}}")
    principals = [Principal.parse(p, f"{path} principals[{i}]") for i, p in enumerate(doc["principals"])]
    ids = [p.principal_id for p in principals]
    if len(ids) != len(set(ids)):
        raise AccessConfigError(f"access configuration {path} names a principal twice")
    if not principals:
        raise AccessConfigError(f"access configuration {path} names no principal")
    return principals


def write_access_config(path: Path, principals: Iterable[Principal]) -> None:
    from notary.keys import write_private

    body = json.dumps({"principals": [p.to_json() for p in principals]}, indent=1, ensure_ascii=False)
    write_private(path, body.encode())


# ----- verifying a signed request -----


class _Keys(HTTPSignatureKeyResolver):
    """The one key the request's keyid names, looked up once per request."""

    def __init__(self, key_id: str, key: PublicKey) -> None:
        self.key_id, self.key = key_id, key

    def resolve_public_key(self, key_id: str) -> PublicKey | None:
        return self.key if key_id == self.key_id else None

    def resolve_private_key(self, key_id: str) -> Any:
        raise HTTPMessageSignaturesException("a verifier holds no private keys")


class _Verifier(HTTPMessageVerifier):
    max_clock_skew = timedelta(seconds=30)


@dataclass(frozen=True)
class SignedMessage:
    """What the signature covers, as the server received it."""

    method: str
    url: str
    headers: Mapping[str, str] | Any


class NonceCache:
    """Nonces seen within the window: a second use is a replay. Bounded; in this process only, so it
    serves a service that runs in one process (tests, the demo); `DatabaseNonces` serves several."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def first_use(self, principal_id: str, nonce: str) -> bool:
        now = time.monotonic()
        horizon = now - NONCE_LIFETIME
        key = f"{principal_id}\n{nonce}"
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if at >= horizon and len(self._seen) < self.capacity:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


# A signature is accepted up to WINDOW after it was made plus the verifier's clock skew either side; a
# nonce is kept at least that long, so that no replay can outlive the memory of its first use.
NONCE_LIFETIME = 2 * WINDOW.total_seconds() + 60

_nonce_metadata: Any = None
_nonce_table: Any = None


def _request_nonces() -> Any:
    """The table of nonces in use, in its own metadata: the notary's and the hub's databases both hold it."""
    global _nonce_metadata, _nonce_table
    if _nonce_table is None:
        from sqlalchemy import Column, Float, Index, MetaData, String, Table

        _nonce_metadata = MetaData()
        _nonce_table = Table(
            "request_nonces", _nonce_metadata,
            Column("principal_id", String(128), primary_key=True),
            Column("nonce", String(200), primary_key=True),
            Column("seen_at", Float, nullable=False),
            Index("ix_request_nonces_seen_at", "seen_at"),
        )
    return _nonce_table


class DatabaseNonces:
    """Nonces shared by all of a service's worker processes: a replay sent to another worker (`--workers N`)
    finds the first use there. The primary key makes the first use win even when two workers see the same
    nonce at once. Expired nonces are deleted as new ones arrive.

    Remembering a nonce must not cost a durable commit per request (that would undo group commit), and it
    need not: a nonce only has to outlive its signature's window, and losing the last ones to a power cut,
    not to a process crash, is what a replay window of minutes can bear. So on SQLite the nonces live in a
    file of their own beside the database, written without fsync; on PostgreSQL in an UNLOGGED table,
    committed without waiting for the flush. A replay within this process is refused from memory first."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import create_engine, event, text

        self.local = NonceCache()
        self.table = _request_nonces()
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            from notary.keys import create_private_database

            url = f"sqlite:///{Path(engine.url.database).with_name('request-nonces.db')}"
            create_private_database(url)
            self.engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(self.engine, "connect")
            def _no_fsync(dbapi_connection: Any, _: Any) -> None:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                dbapi_connection.execute("PRAGMA synchronous=OFF")

            self.table.metadata.create_all(self.engine, checkfirst=True)
            self._flush_later = False
        else:
            self.engine = engine
            self._flush_later = engine.dialect.name == "postgresql"
            if self._flush_later:
                with engine.begin() as conn:
                    conn.execute(text(
                        "CREATE UNLOGGED TABLE IF NOT EXISTS request_nonces (principal_id VARCHAR(128) NOT NULL, "
                        "nonce VARCHAR(200) NOT NULL, seen_at DOUBLE PRECISION NOT NULL, "
                        "PRIMARY KEY (principal_id, nonce))"))
                    conn.execute(text(
                        "CREATE INDEX IF NOT EXISTS ix_request_nonces_seen_at ON request_nonces (seen_at)"))
            else:
                self.table.metadata.create_all(engine, checkfirst=True)
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def first_use(self, principal_id: str, nonce: str) -> bool:
        from sqlalchemy import delete, insert, text
        from sqlalchemy.exc import IntegrityError

        if not self.local.first_use(principal_id, nonce):
            return False
        now = time.time()
        try:
            with self.engine.begin() as conn:
                if self._flush_later:
                    conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
                conn.execute(insert(self.table).values(principal_id=principal_id, nonce=nonce, seen_at=now))
                with self._lock:
                    sweep, self._next_sweep = now >= self._next_sweep, max(self._next_sweep, now + 10)
                if sweep:
                    conn.execute(delete(self.table).where(self.table.c.seen_at < now - NONCE_LIFETIME))
        except IntegrityError:
            return False
        return True


def _signature_key_id(headers: Any) -> str:
    raw = headers.get("signature-input")
    if not raw:
        raise AccessDenied(401, "this request needs an HTTP message signature (Signature-Input and Signature "
                                "headers, RFC 9421) made with the caller's registered key")
    try:
        parsed = http_sf.parse(raw.encode("ascii"), tltype="dictionary")
    except (ValueError, UnicodeEncodeError) as exc:
        raise AccessDenied(401, "Signature-Input is not a structured field dictionary") from exc
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise AccessDenied(401, "Signature-Input must carry exactly one signature")
    (member,) = parsed.values()
    params = member[1] if isinstance(member, tuple) and len(member) == 2 else {}
    key_id = params.get("keyid") if isinstance(params, dict) else None
    if not isinstance(key_id, str):
        raise AccessDenied(401, "Signature-Input names no keyid (the principal id)")
    import re

    if not re.fullmatch(_ID, key_id):
        # Never echoed: it is the caller's text, of any length, and matches no principal anyway.
        raise AccessDenied(401, f"the keyid of Signature-Input is not a principal id (it must match {_ID})")
    return key_id


class Authenticator:
    """Checks one request's signature against the registry and returns its principal."""

    def __init__(self, registry: Registry, nonces: "NonceCache | DatabaseNonces | None" = None) -> None:
        self.registry = registry
        self.nonces = nonces if nonces is not None else NonceCache()

    def authenticate(self, message: SignedMessage, body: bytes) -> "Caller":
        key_id = _signature_key_id(message.headers)
        principal = self.registry.get(key_id)
        if principal is None:
            raise AccessDenied(401, f"principal {key_id!r} is not registered (or was revoked) with this service")
        key = self.registry.key_of(principal)
        verified = verify_profile(message, body, key_id, key)
        if verified is None:
            # Outside the one profile our clients sign, or not verifying: the library decides, and says why.
            verified = self._verify_general(message, body, key_id, key)
        nonce, purpose = verified
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise AccessDenied(401, "the request signature needs a nonce of 16 to 128 characters")
        if not self.nonces.first_use(key_id, nonce):
            raise AccessDenied(401, f"replayed request: nonce {nonce[:12]}… of {key_id} was already used")
        return Caller(principal, purpose)

    @staticmethod
    def _verify_general(message: SignedMessage, body: bytes, key_id: str, key: PublicKey) -> tuple[Any, str | None]:
        """RFC 9421 verification by the http-message-signatures library: the nonce and the signed purpose."""
        algorithm = algorithms.ED25519 if isinstance(key, ed25519.Ed25519PublicKey) else algorithms.ECDSA_P256_SHA256
        verifier = _Verifier(signature_algorithm=algorithm, key_resolver=_Keys(key_id, key))
        try:
            (result,) = verifier.verify(message, max_age=WINDOW, expect_tag=TAG,
                                        require_components=(*COVERED, "content-digest"), body=body)
        except (InvalidSignature, HTTPMessageSignaturesException, ValueError) as exc:
            reason = str(exc) or ("it was not made over this method, authority, path, query and body with the "
                                  "registered key")
            raise AccessDenied(401, f"the request signature of {key_id} does not verify: {reason}") from exc
        if result.parameters.get("keyid") != key_id:
            raise AccessDenied(401, "the verified signature names another keyid")
        return result.nonce, result.covered_components.get('"bidtrace-purpose"')


# ----- the one signature profile our clients make, verified directly -----
#
# Profiling (bench/RESULTS.md §7) showed that verifying a request through the general library spends most of
# its time outside the cryptography: it parses the two structured fields about twenty times and resolves
# every component through a general resolver. Requests signed as `SignedRequests` signs them (one signature,
# string components without parameters from a fixed set, created/keyid/nonce/tag[/alg] parameters, a URL of
# the plain form below) are verified here in one pass, with the same checks the library makes on that
# profile: the same header field values (its own `get_header_fields`), the same derived components, the same
# signature base, the same time window and clock skew, the Content-Digest of the body. Only an acceptance is
# final: anything else goes to the library, whose verdict (and message) stands, so this path can make a
# request neither pass that the library refuses nor fail differently.

_PROFILE_COMPONENTS = frozenset({*COVERED, "content-digest", "bidtrace-purpose"})
_PROFILE_REQUIRED = frozenset({*COVERED, "content-digest"})
_PROFILE_PARAMS = frozenset({"created", "keyid", "nonce", "tag", "alg"})
_URL_CHARS = r"A-Za-z0-9._~\-!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PROFILE_URL = re.compile(
    rf"(?P<scheme>https?)://(?P<host>(?:[{_URL_CHARS}]|{_PCT})+)(?::(?P<port>[0-9]*))?"
    rf"(?P<path>/(?:[{_URL_CHARS}:@/]|{_PCT})*)?(?:\?(?P<query>(?:[{_URL_CHARS}:@/?]|{_PCT})*))?")
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_SKEW = _Verifier.max_clock_skew.total_seconds()


def _reject_duplicate(key: str, context: str) -> None:
    if context == "dictionary":
        raise ValueError(f"duplicate member {key!r}")


def _sf_dictionary(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary", on_duplicate_key=_reject_duplicate)
    return parsed if isinstance(parsed, dict) else None


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _signature_params(ids: list[str], params: dict[str, Any]) -> str:
    """RFC 8941 serialisation of the covered components and the parameters, as they came (their order kept):
    within the profile they are strings (parsed, so printable ASCII) and the integer `created`."""
    out = "(" + " ".join(_sf_string(i) for i in ids) + ")"
    for name, value in params.items():
        out += f";{name}={value}" if type(value) is int else f";{name}={_sf_string(value)}"
    return out


def verify_profile(message: SignedMessage, body: bytes, key_id: str, key: PublicKey) -> tuple[str, str | None] | None:
    """The nonce and the signed purpose of a request signed in our profile whose signature verifies with
    `key`; None for anything else (which the library then judges)."""
    try:
        return _verify_profile(message, body, key_id, key)
    except (ValueError, TypeError, UnicodeError, KeyError, CryptoInvalidSignature):
        return None


def _verify_profile(message: SignedMessage, body: bytes, key_id: str, key: PublicKey) -> tuple[str, str | None] | None:
    fields = get_header_fields(message.headers)  # type: ignore[no-untyped-call]
    inputs, signatures = _sf_dictionary(fields.get("signature-input")), _sf_dictionary(fields.get("signature"))
    if not inputs or not signatures or len(inputs) != 1 or inputs.keys() != signatures.keys():
        return None
    ((label, (covered, params)),) = inputs.items()
    signature = signatures[label][0]
    if not isinstance(covered, list) or not isinstance(signature, bytes) or set(params) - _PROFILE_PARAMS:
        return None
    ids = [item for item, item_params in covered if isinstance(item, str) and not item_params]
    if len(ids) != len(covered) or len(set(ids)) != len(ids):
        return None
    if not _PROFILE_REQUIRED <= set(ids) <= _PROFILE_COMPONENTS:
        return None
    created, nonce, tag = params.get("created"), params.get("nonce"), params.get("tag")
    if type(created) is not int or params.get("keyid") != key_id or tag != TAG or not isinstance(nonce, str):
        return None
    ecdsa = isinstance(key, ec.EllipticCurvePublicKey)
    if "alg" in params and params["alg"] != ("ecdsa-p256-sha256" if ecdsa else "ed25519"):
        return None
    now = time.time()
    if created > now + _SKEW or created + WINDOW.total_seconds() < now - _SKEW:
        return None
    url = _PROFILE_URL.fullmatch(message.url)
    if url is None or message.method != message.method.upper():
        return None
    port = url["port"]
    if port and port.lstrip("0") == {"http": "80", "https": "443"}[url["scheme"]]:
        port = None
    host = url["host"].lower()
    values = {"@method": message.method, "@authority": f"{host}:{port}" if port else host,
              "@path": url["path"] or "/", "@query": "?" + (url["query"] or "")}
    lines = []
    for name in ids:
        value = values[name] if name.startswith("@") else fields.get(name)
        if value is None or "\r" in value or "\n" in value:
            return None
        if name.startswith("@"):  # derived: printable, no surrounding spaces
            if value and (not value.isprintable() or value.startswith(" ") or value.endswith(" ")):
                return None
        elif value and not value.replace("\t", " ").isprintable():  # a field: tabs allowed inside
            return None
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {_signature_params(ids, params)}')
    base = "\n".join(lines)
    if not base.isascii():
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if len(signature) != 64:
            return None
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        key.verify(der, base.encode(), ec.ECDSA(hashes.SHA256()))
    else:
        key.verify(signature, base.encode())
    digests = _sf_dictionary(fields["content-digest"])
    if not digests:
        return None
    for algorithm, (digest, _) in digests.items():
        hasher = _DIGESTS.get(algorithm)
        if hasher is None or not isinstance(digest, bytes) or not hmac.compare_digest(digest, hasher(body).digest()):
            return None
    return nonce, fields.get("bidtrace-purpose") if "bidtrace-purpose" in ids else None


@dataclass(frozen=True)
class Caller:
    """An authenticated principal and the purpose it stated (signed), if any; `principal` None is the public."""

    principal: Principal | None
    purpose: str | None = None
    local: bool = False  # an unsigned caller on loopback of an --insecure-local service

    @property
    def role(self) -> str:
        return str(self.principal.role) if self.principal else "local" if self.local else PUBLIC

    @property
    def name(self) -> str:
        return self.principal.principal_id if self.principal else PUBLIC


# ----- signing requests (clients) -----


class PrincipalKey:
    """A principal's private key, as its holder keeps it."""

    def __init__(self, principal_id: str, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        self.principal_id = principal_id
        self.private_key = private_key

    @classmethod
    def generate(cls, principal_id: str, algorithm: str = "ecdsa-p256-sha256") -> Self:
        if algorithm == "ed25519":
            return cls(principal_id, ed25519.Ed25519PrivateKey.generate())
        return cls(principal_id, ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, path: Path, principal_id: str) -> Self:
        from notary.keys import read_private

        try:
            data = read_private(path, "key file")
        except ValueError as exc:
            raise AccessConfigError(str(exc)) from exc
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise AccessConfigError(f"key file {path} is not an ECDSA P-256 or Ed25519 private key")
        return cls(principal_id, key)

    @classmethod
    def load_or_create(cls, path: Path, principal_id: str) -> Self:
        from notary.keys import write_private

        if path.exists():
            return cls.load(path, principal_id)
        created = cls.generate(principal_id)
        try:
            write_private(path, created.private_pem(), replace=False)
        except FileExistsError:
            return cls.load(path, principal_id)  # another process created it first
        return created

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def principal(self, role: Role, venue_id: str | None = None, function: str | None = None,
                  projects: Iterable[str] = ()) -> Principal:
        return Principal(self.principal_id, role, self.public_pem(), venue_id, function, frozenset(projects))


class _OwnKey(HTTPSignatureKeyResolver):
    def __init__(self, key: PrincipalKey) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> Any:
        return self.key.private_key

    def resolve_public_key(self, key_id: str) -> Any:
        return self.key.private_key.public_key()


class SignedRequests(httpx.Auth):
    """httpx authentication that signs every request with a principal's key (RFC 9421 + RFC 9530)."""

    requires_request_body = True

    def __init__(self, key: PrincipalKey, purpose: str | None = None) -> None:
        self.key = key
        self.purpose = purpose
        algorithm = (algorithms.ED25519 if isinstance(key.private_key, ed25519.Ed25519PrivateKey)
                     else algorithms.ECDSA_P256_SHA256)
        self._signer = HTTPMessageSigner(signature_algorithm=algorithm, key_resolver=_OwnKey(key))

    def sign(self, request: httpx.Request) -> None:
        for name in ("content-digest", "signature", "signature-input"):  # a request signed again is signed anew
            if name in request.headers:
                del request.headers[name]
        if self.purpose and "bidtrace-purpose" not in request.headers:
            request.headers["Bidtrace-Purpose"] = self.purpose
        covered = (*COVERED, "bidtrace-purpose") if "bidtrace-purpose" in request.headers else COVERED
        self._signer.sign(request, key_id=self.key.principal_id, nonce=secrets.token_urlsafe(18), tag=TAG,
                          covered_component_ids=covered, body=request.content)

    def auth_flow(self, request: httpx.Request) -> Any:
        self.sign(request)
        yield request


def _loopback(host: str | None) -> bool:
    import ipaddress

    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def caller_of(request: Any, authenticator: Authenticator, insecure_local: bool) -> Caller:
    """The caller of a Starlette request: its signed principal; the public when unsigned; anyone on
    loopback when the service runs --insecure-local. A bad signature is a 401, never the public."""
    headers = request.headers
    if "signature-input" not in headers and "signature" not in headers:
        client = request.client.host if request.client is not None else None
        if insecure_local and _loopback(client):
            return Caller(None, headers.get("bidtrace-purpose"), local=True)
        return Caller(None)
    body = await request.body()
    return authenticator.authenticate(SignedMessage(request.method, _target_uri(request), headers), body)


def check_standing(registry: Registry, caller: Caller) -> None:
    """Refuse (401) a caller whose principal was revoked, or bound otherwise, since its request was
    authenticated: checked again where something confidential is recorded as read and where it is handed out."""
    p = caller.principal
    if p is not None and not registry.standing(p):
        raise AccessDenied(401, f"principal {p.principal_id} was revoked while its request was under way; "
                                "nothing is served")


class Permissions:
    """A service's role × action matrix (`table`: action -> the roles allowed, `PUBLIC` for anyone) and the
    FastAPI dependencies that enforce it, shared by the notary and the hub. The application keeps its
    `Authenticator` in `app.state.authenticator` and whether it serves `--insecure-local` (no access
    configuration: any unsigned caller on loopback may do anything) in `app.state.insecure_local`."""

    def __init__(self, table: Mapping[str, frozenset[str]]) -> None:
        self.table = table

    async def caller(self, request: Request) -> Caller:
        """The authenticated principal, or the public when the request carries no signature (a FastAPI
        dependency; async although it does no I/O of its own: a sync one costs a thread hop per request)."""
        state = request.app.state
        try:
            return await caller_of(request, state.authenticator, bool(getattr(state, "insecure_local", False)))
        except AccessDenied as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    def allowed(self, caller: Caller, action: str) -> bool:
        return caller.local or caller.role in self.table[action]

    def permit(self, caller: Caller, action: str) -> None:
        """Refuse `caller` unless its role may do `action`: 401 for the public, 403 for a role, each naming who may."""
        if not self.allowed(caller, action):
            who = ", ".join(sorted(self.table[action])) or "no one through the API"
            if caller.principal is None:
                raise HTTPException(401, f"{action.replace('_', ' ')} needs a signed request from a registered "
                                         f"principal ({who})")
            raise HTTPException(403, f"{caller.principal.describe()} may not {action.replace('_', ' ')}; "
                                     f"that is for {who}")

    def require(self, action: str) -> Callable[[Request], Awaitable[Caller]]:
        """A FastAPI dependency: the caller, if its role may do `action` (else 401 or 403)."""
        async def check(request: Request) -> Caller:
            caller = await self.caller(request)
            self.permit(caller, action)
            return caller
        return check


def _target_uri(request: Any) -> str:
    """The URL as the client sent it: the raw path and query bytes, not the decoded ones Starlette's
    `request.url` rebuilds (which would turn `%2C` into `,` and break every signature over such a path)."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return f"{request.url.scheme}://{request.url.netloc}{target}"
