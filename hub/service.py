"""A running hub: its state, its registered key with the notary, and the one way it writes evidence.

Every state change follows the same order under the hub's lock: check the transition against the
stored state, write the evidence through the notary API (signed with the hub's key), then commit the
new state. If the notary refuses or cannot be reached nothing changes and the caller is told so.
Personal data enters a record only as a salted commitment; the opening goes to the notary as a
disclosure (kept in its access-controlled store), never into the record.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub import db as models
from hub.config import HubConfig
from hub.errors import NotaryRefused, NotaryUnavailable, NotFound
from hub.linkage import LinkageKeys
from notary.access import AccessConfigError, Caller, PrincipalKey, Registry, load_access_config
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.keys import create_private_database
from verifier.commitments import commit, new_salt
from verifier.times import format_time

log = logging.getLogger("bidtrace.hub")


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
        self.principals = Registry(load_access_config(config.access) if config.access is not None else ())
        self.lock = threading.RLock()
        self.storage_error: str | None = None  # the last write the database refused
        self.tz = timezone(timedelta(hours=config.utc_offset_hours))
        self._scheduler: Any = None

    # ----- lifecycle -----

    def register(self, admin: PrincipalKey) -> dict[str, Any]:
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

    def record_access(self, session_id: str, caller: Caller, action: str, resource: str) -> None:
        """去向可查: reading what is not public is evidence. Written before the answer is sent."""
        from hub.errors import HubError

        payload: dict[str, Any] = {"principal_id": "local" if caller.local else caller.name, "role": caller.role,
                                   "action": action, "resource": resource[:400]}
        if caller.purpose:
            payload["purpose"] = caller.purpose[:200]
        with self.lock, self.db() as s:
            session = self.get(s, models.EvalSession, session_id, "session")
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
    ) -> dict[str, Any]:
        """Submit one record about `session` to the notary and mirror it; return its receipt (and the record
        submitted, under "record").

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
        leaf = int(receipt["leaf_index"])
        if s.get(models.EvidenceRow, leaf) is None:
            s.add(models.EvidenceRow(
                leaf_index=leaf, project_id=session.project_id, session_id=session.session_id, type=kind,
                occurred_at=record["occurred_at"], leaf_hash=receipt["leaf_hash"], record=record, receipt=receipt,
                fanned_out=False))
        log.info("%s %s of %s -> leaf %d", kind, payload.get("action") or payload.get("status") or "",
                 session.session_id, leaf)
        return {**receipt, "record": record}

    def write_registry(self, s: Session, payload: dict[str, Any], kind: str = "registry",
                       venue_id: str | None = None) -> dict[str, Any]:
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
