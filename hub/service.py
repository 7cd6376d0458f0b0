"""A running hub: its state, its registered key with the notary, and the one way it writes evidence.

Every state change follows the same order under the hub's lock: check the transition against the
stored state, write the evidence through the notary API (signed with the hub's key), then commit the
new state. If the notary refuses or cannot be reached nothing changes and the caller is told so.
Personal data enters a record only as a salted commitment; the opening goes to the notary as a
disclosure (kept in its access-controlled store), never into the record.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub import db as models
from hub.config import HubConfig
from hub.errors import Conflict, HubError, NotaryRefused, NotaryUnavailable, NotFound, Revoked
from hub.linkage import LinkageKeys
from notary.access import (
    AccessConfigError,
    AccessDenied,
    Caller,
    DatabaseRegistry,
    Principal,
    PrincipalKey,
    check_standing,
    load_access_config,
    registry_payload,
)
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.keys import create_private_database
from verifier.commitments import commit, new_salt
from verifier.receipt import Receipt
from verifier.times import format_time

log = logging.getLogger("bidtrace.hub")
CONFIGURATION = "access-configuration"  # who bound the principals the operator's access file names


class HubRegistry(DatabaseRegistry):
    """The hub's principals, in its database (bindings and revocations survive restarts). A principal its
    access configuration names acts only once its binding is a `registry` record in the log: the hub records
    those bindings when it starts serving, or when such a principal first calls if the notary could not take
    them then (a 503 naming why while it still cannot)."""

    def __init__(self, hub: "Hub") -> None:
        super().__init__(hub.engine, (models.principals, models.revocations))
        self.hub = hub
        self.pending: dict[str, Principal] = {}  # named by the access configuration, binding not yet recorded

    def bound_as(self, principal_id: str) -> Principal | None:
        """The binding in the database, without recording any pending one."""
        return super().get(principal_id)

    def get(self, principal_id: str) -> Principal | None:
        found = super().get(principal_id)
        if found is None and principal_id in self.pending:
            try:
                self.hub.record_configuration()
            except HubError as exc:
                raise AccessDenied(503, f"the binding of principal {principal_id} from the hub's access "
                                        f"configuration is not yet recorded in the log, so it cannot act yet: "
                                        f"{exc.message}") from exc
            found = super().get(principal_id)
        return found


class Hub:
    def __init__(self, config: HubConfig) -> None:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config = config
        create_private_database(config.url)
        self.engine = models.open_engine(config.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.key = SubmitterKey.load_or_create(config.data_dir / "hub.key", config.hub_id)
        # The hub's key signs its evidence and its requests to the notary alike.
        self.notary = NotaryClient(config.notary_url, timeout=15.0, as_principal=self.key)
        self.linkage_keys = LinkageKeys.load_or_create(config.registry_key_file)
        self.lock = threading.RLock()
        self.principals = HubRegistry(self)
        if config.access is not None:
            self._take_configuration(load_access_config(config.access))
        self.storage_error: str | None = None  # the last write the database refused
        self.tz = timezone(timedelta(hours=config.utc_offset_hours))
        self._scheduler: Any = None

    # ----- lifecycle -----

    def register(self, admin: PrincipalKey) -> Principal:
        """Bind the hub's key with the notary as the hub (signed by a notary administrator; idempotent)."""
        client = NotaryClient(self.config.notary_url, timeout=15.0, as_principal=admin)
        try:
            return client.register(self.key, "hub")
        finally:
            client.close()

    def probe_storage(self) -> None:
        """Try a harmless write; clear the recorded refusal if the database takes writes again."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self.db() as s:
                row = s.get(models.State, "storage_probe") or models.State(key="storage_probe", value=0)
                row.value += 1
                s.add(row)
                s.commit()
        except DBAPIError:
            return
        self.storage_error = None

    def check_access_configured(self) -> None:
        """Refuse to serve without an access configuration, unless insecure-local (and then say so)."""
        if self.config.access is None and not self.config.insecure_local:
            raise AccessConfigError(
                "no access configuration: pass --access FILE (or BIDTRACE_HUB_ACCESS) naming the principals "
                "allowed in, or --insecure-local for a demonstration on loopback")
        if self.config.access is None:
            import sys

            print("WARNING: --insecure-local: the hub has no access configuration; any caller on this machine "
                  "may do anything. For a demonstration on loopback only.", file=sys.stderr, flush=True)

    # ----- principals -----

    def _take_configuration(self, configured: list[Principal]) -> None:
        """The access configuration is the registry the hub starts from (a file under change control): each
        principal it names that is not bound yet is bound once its binding is recorded in the log (see
        `record_configuration`); one bound exactly so already (a restart) is neither bound nor recorded
        again. A key revoked through the API stays revoked, and a binding changed in the file must first be
        revoked: either is refused here, by name, rather than silently undone."""
        for principal in configured:
            existing = self.principals.bound_as(principal.principal_id)
            if existing == principal:
                continue
            if existing is not None:
                raise AccessConfigError(
                    f"the access configuration names {principal.describe()}, but the hub has it bound as "
                    f"{existing.describe()}; revoke it first (POST /principals/{principal.principal_id}/revoke)")
            if self.principals.was_revoked(principal):
                raise AccessConfigError(
                    f"the access configuration names {principal.describe()}, whose key was revoked; bind a new "
                    f"key through POST /principals or remove it from the file")
            principal.key()
            self.principals.pending[principal.principal_id] = principal

    def record_configuration(self) -> int:
        """Record, then bind, the access configuration's principals not bound yet; how many were. The record
        goes first: a crash between the two records a binding twice at worst, never binds one unrecorded."""
        with self.lock:
            done = 0
            for principal in list(self.principals.pending.values()):
                if self.principals.bound_as(principal.principal_id) != principal:
                    with self.db() as s:
                        self.write_registry(s, registry_payload("principal_bound", principal, CONFIGURATION))
                        s.commit()
                    try:
                        DatabaseRegistry.bind(self.principals, principal)
                    except AccessConfigError as exc:  # bound otherwise or revoked through the API meanwhile
                        log.warning("access configuration: %s", exc)
                    done += 1
                del self.principals.pending[principal.principal_id]
            return done

    def bind_principal(self, principal: Principal, by: str) -> bool:
        """Bind a principal through the API: its `registry` record (by `by`) first, then the binding. False
        if it was already bound exactly so (nothing recorded); a 409 if bound otherwise or its key revoked."""
        with self.lock:
            self.record_configuration()
            existing = self.principals.bound_as(principal.principal_id)
            if existing == principal:
                return False
            if existing is not None:
                raise Conflict(f"principal {principal.principal_id} is already bound as {existing.describe()}; "
                               "revoke it first")
            if self.principals.was_revoked(principal):
                raise Conflict(f"the key of principal {principal.principal_id} was revoked and cannot be bound "
                               "again; bind a new key")
            with self.db() as s:
                self.write_registry(s, registry_payload("principal_bound", principal, by))
                s.commit()
            self.principals.bind(principal)
            return True

    def revoke_principal(self, principal_id: str, by: str,
                         check: Callable[[Principal], None] | None = None) -> Principal:
        """Revoke a principal: its `registry` record (by `by`) first, then the revocation, which holds from the
        next request on (and for reads under way, see `hub.api.deps.release`) and across restarts. If the
        notary cannot take the record nothing changes and the caller is told so (503), like every change."""
        with self.lock:
            self.record_configuration()
            existing = self.principals.bound_as(principal_id)
            if existing is None:
                raise NotFound(f"principal {principal_id} is not bound at this hub")
            if check is not None:
                check(existing)  # whether the caller may revoke this one, against its binding as it is now
            with self.db() as s:
                self.write_registry(s, registry_payload("principal_revoked", existing, by))
                self._stop_feeds_of(s, existing)
                s.commit()
            self.principals.revoke(principal_id)
            return existing

    def _stop_feeds_of(self, s: Session, principal: Principal) -> None:
        """A revoked supervisor's subscriptions, and every one pushing to an endpoint only it registered, stop."""
        others = {url for p in self.principals.all() if p.principal_id != principal.principal_id
                  for url in p.endpoints}
        gone = principal.endpoints - others
        for sub in s.scalars(select(models.Subscription).where(models.Subscription.active.is_(True))):
            if sub.owner == principal.principal_id or sub.url in gone:
                sub.active = False

    def check_standing(self, caller: Caller) -> None:
        """Refuse a caller whose principal was revoked (or bound otherwise) since its request was authenticated."""
        try:
            check_standing(self.principals, caller)
        except AccessDenied as exc:
            raise Revoked(str(exc)) from exc

    def record_access(self, session_id: str, caller: Caller, action: str, resource: str) -> None:
        """去向可查: reading what is not public is evidence. Written before the answer is sent."""
        from hub.errors import HubError

        self.check_standing(caller)
        payload: dict[str, Any] = {"principal_id": "local" if caller.local else caller.name, "role": caller.role,
                                   "action": action, "resource": resource[:400]}
        if caller.purpose:
            payload["purpose"] = caller.purpose[:200]
        with self.lock, self.db() as s:
            session = self.get(s, models.EvalSession, session_id, "session")
            self.check_standing(caller)  # again under the lock: a revocation cannot slip in before the record
            try:
                self.write(s, session, "access", session.main_venue_id, payload)
            except HubError as exc:
                exc.message = f"the read cannot be recorded, so it is not served: {exc.message}"
                raise
            s.commit()

    def start(self) -> None:
        from hub.jobs import start_scheduler

        if self._scheduler is None:
            self._scheduler = start_scheduler(self)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def close(self) -> None:
        self.stop()
        self.notary.close()
        self.engine.dispose()

    # ----- helpers -----

    @contextmanager
    def db(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def stamp(self) -> str:
        return format_time(self.now())

    def next_id(self, s: Session, prefix: str) -> str:
        row = s.get(models.State, f"seq:{prefix}")
        if row is None:
            row = models.State(key=f"seq:{prefix}", value=0)
            s.add(row)
        row.value += 1
        return f"{prefix}-{row.value}"

    def get(self, s: Session, model: type[Any], key: str, what: str) -> Any:
        obj = s.get(model, key)
        if obj is None:
            raise NotFound(f"{what} {key} does not exist")
        return obj

    def notary_get(self, path: str, **params: Any) -> Any:
        try:
            return self.notary.get(path, **params)
        except NotaryError as exc:
            if exc.status == 404:
                raise NotFound(f"notary: {exc.detail}") from exc
            raise NotaryUnavailable(f"the notary answered {exc.status}: {exc.detail}") from exc
        except httpx.HTTPError as exc:
            raise NotaryUnavailable(f"the notary at {self.config.notary_url} cannot be reached ({exc})") from exc

    # ----- evidence -----

    def write(
        self, s: Session, session: models.EvalSession, kind: str, venue_id: str, payload: dict[str, Any],
        personal: dict[str, str] | None = None, attachments: list[dict[str, Any]] | None = None,
        salts: dict[str, bytes] | None = None,
    ) -> Receipt:
        """Submit one record about `session` to the notary and mirror it; return its receipt (see
        `write_with_record`)."""
        return self.write_with_record(s, session, kind, venue_id, payload, personal, attachments, salts)[1]

    def write_with_record(
        self, s: Session, session: models.EvalSession, kind: str, venue_id: str, payload: dict[str, Any],
        personal: dict[str, str] | None = None, attachments: list[dict[str, Any]] | None = None,
        salts: dict[str, bytes] | None = None,
    ) -> tuple[dict[str, Any], Receipt]:
        """Submit one record about `session` to the notary and mirror it; return the record submitted and the
        notary's receipt for it (checked: signed for exactly this record).

        `personal` maps payload fields (named `*_commitment`) to personal values: each becomes
        a `verifier.commitments` commitment under a fresh salt (or the one `salts` gives for it: a linkage),
        and the opening is disclosed to the notary only.
        """
        payload = dict(payload)
        disclosures = []
        for name, value in (personal or {}).items():
            salt = (salts or {}).get(name) or new_salt()
            payload[name] = commit(salt, value)
            disclosures.append({"index": 0, "field": name, "salt": salt.hex(), "value": value})
        record = {
            "type": kind, "project_id": session.project_id, "session_id": session.session_id,
            "venue_id": venue_id, "device_id": self.key.submitter_id, "occurred_at": self.stamp(),
            "payload": payload, "attachments": attachments or [],
        }
        try:
            receipt = self.notary.submit(self.key, [record], disclosures)[0]
        except NotaryError as exc:
            if exc.status >= 500:
                raise NotaryUnavailable(f"the notary failed ({exc.status}: {exc.detail}); nothing was changed") from exc
            raise NotaryRefused(f"the notary refused the {kind} record ({exc.status}: {exc.detail}); "
                                "nothing was changed") from exc
        except httpx.HTTPError as exc:
            raise NotaryUnavailable(f"the notary at {self.config.notary_url} cannot be reached ({exc}); "
                                    "nothing was changed") from exc
        leaf = receipt.leaf_index
        if s.get(models.EvidenceRow, leaf) is None:
            s.add(models.EvidenceRow(
                leaf_index=leaf, project_id=session.project_id, session_id=session.session_id, type=kind,
                occurred_at=record["occurred_at"], leaf_hash=receipt.leaf_hash.hex(), record=record,
                receipt=receipt.encode(), fanned_out=False))
        log.info("%s %s of %s -> leaf %d", kind, payload.get("action") or payload.get("status") or "",
                 session.session_id, leaf)
        return record, receipt

    def write_registry(self, s: Session, payload: dict[str, Any], kind: str = "registry",
                       venue_id: str | None = None) -> Receipt:
        """A `registry` record: a change to who or what the hub trusts (a CA, the expert pool), or another
        registration (a room's cameras). It belongs to no evaluation: its project and session are both
        "registry"."""
        registry = models.EvalSession(session_id="registry", project_id="registry", main_venue_id=self.config.hub_id)
        return self.write(s, registry, kind, venue_id or self.config.hub_id, payload)

    def open_session(self, s: Session, session_id: str) -> models.EvalSession:
        """The session, refusing changes once it is archived."""
        from hub.errors import Conflict

        session: models.EvalSession = self.get(s, models.EvalSession, session_id, "session")
        if session.status == "archived":
            raise Conflict(f"session {session_id} was archived (leaf {session.archive_leaf}); it cannot change")
        return session

    def projects(self, s: Session) -> set[str]:
        return set(s.scalars(select(models.EvalSession.project_id).distinct()))
