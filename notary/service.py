"""A running notary: configuration, and the log, key, ledger and sealer it wires together."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from anchors.ledger import Ledger
from notary.access import AccessConfigError, DatabaseRegistry, Principal, load_access_config
from notary.client import SubmitterKey
from notary.keys import NotaryKey, create_private_database
from notary.log import Committer, EvidenceLog
from notary.sealing import Sealer, SealerState, read_status
from notary.store import open_engine


@dataclass
class NotaryConfig:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("BIDTRACE_DATA", "data/notary")))
    database_url: str | None = field(default_factory=lambda: os.environ.get("BIDTRACE_DATABASE_URL"))
    log_id: str = field(default_factory=lambda: os.environ.get("BIDTRACE_LOG_ID", "province"))
    origin: str | None = None
    ledger: str = field(default_factory=lambda: os.environ.get("BIDTRACE_LEDGER", "embedded"))
    org: str = field(default_factory=lambda: os.environ.get("BIDTRACE_ORG", "ProvinceMSP"))
    seal_interval: float = 1.0
    seal_records: int = 10_000
    max_merge_delay: int = 60
    # The principals allowed in (JSON, see notary.access); without it the API refuses to start unless
    # `insecure_local`, which serves loopback only and lets any local caller do anything.
    access: Path | None = field(
        default_factory=lambda: Path(os.environ["BIDTRACE_ACCESS"]) if os.environ.get("BIDTRACE_ACCESS") else None)
    insecure_local: bool = field(default_factory=lambda: os.environ.get("BIDTRACE_INSECURE_LOCAL") == "1")
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("BIDTRACE_MAX_BODY", 32 * 1024 * 1024)))
    # Submissions one HTTP worker checks or holds for their commit at once; more are answered 503 with
    # Retry-After (notary.api.intake). Enough to fill large groups, few enough to keep a queue short.
    max_in_flight: int = field(default_factory=lambda: int(os.environ.get("BIDTRACE_MAX_IN_FLIGHT", 256)))

    @property
    def note_name(self) -> str:
        return self.origin or f"bidtrace/{self.log_id}"

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'notary.db'}"


CONFIGURATION = "access-configuration"  # who bound the principals the operator's access file names

INSECURE_WARNING = (
    "WARNING: --insecure-local: no access configuration; any caller on this machine may do anything, "
    "including reading sealed records. For a demonstration on loopback only, never for real evidence."
)


def open_ledger(config: NotaryConfig, key: NotaryKey) -> Ledger:
    if config.ledger == "embedded":
        from anchors.embedded import EmbeddedLedger

        return EmbeddedLedger(config.data_dir / "ledger", config.org, config.org, key.public_pem().encode())
    if config.ledger == "fabric":
        from anchors.fabric import open_fabric_ledger

        ledger: Ledger = open_fabric_ledger(config.org)
        return ledger
    raise ValueError(f"ledger must be 'embedded' or 'fabric', got {config.ledger!r}")


class Notary:
    def __init__(self, config: NotaryConfig, ledger: Ledger | None = None, committer: Committer | None = None) -> None:
        """`committer`: what appends checked submissions, when not this process's own group commit (a worker
        process hands them to its notary's sequencer)."""
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config = config
        self.key = NotaryKey.load_or_create(config.data_dir / "notary.key", config.note_name)
        create_private_database(config.url)
        self.engine = open_engine(config.url)
        self.log = EvidenceLog(self.engine, self.key, config.log_id, committer)
        self.principals = DatabaseRegistry(self.engine)
        self.storage_error: str | None = None  # the last write the database refused, until one succeeds
        # Access and registry records are the notary's own evidence, signed by its own submitter key.
        self.recorder_key = SubmitterKey.load_or_create(config.data_dir / "records.key", f"{config.log_id}.notary")
        self.log.register_submitter(self.recorder_key.principal_id, "notary", self.recorder_key.public_pem())
        if config.access is not None:
            # The access configuration is the registry the operator starts from (a file under change
            # control); changes made through the API after that are registry records in the log.
            for principal in load_access_config(config.access):
                self.bind_from_configuration(principal)
        self.ledger = ledger or open_ledger(config, self.key)
        self.sealer = Sealer(self.log, self.ledger, config.seal_interval, config.seal_records)

    def check_access_configured(self) -> None:
        """Refuse to serve without an access configuration, unless insecure-local (and then say so)."""
        if self.config.access is None and not self.config.insecure_local:
            raise AccessConfigError(
                "no access configuration: pass --access FILE (or BIDTRACE_ACCESS) naming the principals allowed "
                "in, or --insecure-local for a demonstration on loopback")
        if self.config.access is None:
            print(INSECURE_WARNING, file=sys.stderr, flush=True)

    def record_registry_change(self, action: str, principal: Principal, by: str) -> None:
        """A binding or revocation as a `registry` record in the log: who, which role and bindings, and the
        SHA-256 of the key, signed by the notary's own submitter key."""
        from notary.access import registry_payload
        from notary.log import Submission
        from verifier.times import now_utc

        payload = registry_payload(action, principal, by)
        key = self.recorder_key
        record = {"type": "registry", "project_id": "registry", "session_id": "registry",
                  "venue_id": self.config.org, "device_id": key.principal_id,
                  "occurred_at": now_utc(), "payload": payload, "attachments": []}
        self.log.submit(Submission(key.principal_id, [record], key.sign_batch([record])))

    def bind_from_configuration(self, principal: Principal) -> None:
        """Bind a principal the access configuration names, once: its first binding is a `registry` record
        by `access-configuration` (the operator's file), and a restart with the same file binds and records
        nothing more. The record goes first: a crash between the two leaves a binding recorded twice at
        worst, never a binding without its record. A principal revoked through the API stays revoked; the
        file naming it again is refused by name rather than silently undoing the revocation."""
        existing = self.principals.get(principal.principal_id)
        if existing is None:
            if self.principals.was_revoked(principal):
                raise AccessConfigError(
                    f"the access configuration names {principal.describe()}, whose key was revoked; bind a new "
                    f"key through POST /v1/principals or remove it from the file")
            self.record_registry_change("principal_bound", principal, CONFIGURATION)
        self.principals.bind(principal)  # refuses a different binding under the same id, by name
        self.register_submitter_of(principal)

    def register_submitter_of(self, principal: Principal) -> None:
        """A hub or a device signs evidence with the key it signs requests with."""
        role = {"hub_operator": "hub", "device": "device"}.get(str(principal.role))
        if role is not None:
            self.log.register_submitter(principal.principal_id, role, principal.public_key)

    def start(self) -> None:
        self.sealer.start()

    def status(self) -> SealerState:
        """Anchoring status: this process's sealer if it runs one, else what the sealing process published."""
        return self.sealer.state if self.sealer.running else read_status(self.engine)

    def close(self) -> None:
        self.sealer.stop()
        self.log.close()
        self.ledger.close()
        self.engine.dispose()
