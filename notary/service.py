"""A running notary: configuration, and the log, key, ledger and sealer it wires together."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from anchors.ledger import Ledger
from notary.keys import NotaryKey
from notary.log import EvidenceLog
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
    admin_token: str | None = field(default_factory=lambda: os.environ.get("BIDTRACE_ADMIN_TOKEN"))

    @property
    def note_name(self) -> str:
        return self.origin or f"bidtrace/{self.log_id}"

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'notary.db'}"


def _admin_token(config: NotaryConfig) -> str:
    if config.admin_token:
        return config.admin_token
    path = config.data_dir / "admin.token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


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
    def __init__(self, config: NotaryConfig, ledger: Ledger | None = None) -> None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.admin_token = _admin_token(config)
        self.key = NotaryKey.load_or_create(config.data_dir / "notary.key", config.note_name)
        self.engine = open_engine(config.url)
        self.log = EvidenceLog(self.engine, self.key, config.log_id)
        self.ledger = ledger or open_ledger(config, self.key)
        self.sealer = Sealer(self.log, self.ledger, config.seal_interval, config.seal_records)

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
