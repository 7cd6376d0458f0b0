"""Configuration of a running hub."""

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HubConfig:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("BIDTRACE_HUB_DATA", "data/hub")))
    notary_url: str = field(default_factory=lambda: os.environ.get("BIDTRACE_NOTARY_URL", "http://127.0.0.1:8400"))
    hub_id: str = "hub-province"
    database_url: str | None = field(default_factory=lambda: os.environ.get("BIDTRACE_HUB_DATABASE_URL"))
    # The principals allowed in (JSON, see notary.access); without it the API refuses to start unless
    # `insecure_local` (loopback only, any local caller may do anything).
    access: Path | None = field(default_factory=lambda: Path(os.environ["BIDTRACE_HUB_ACCESS"])
                                if os.environ.get("BIDTRACE_HUB_ACCESS") else None)
    # The published roots (bidtrace-trust/1) that uploaded extracts and receipts are checked against.
    trust: Path | None = field(default_factory=lambda: Path(os.environ["BIDTRACE_HUB_TRUST"])
                               if os.environ.get("BIDTRACE_HUB_TRUST") else None)
    insecure_local: bool = field(default_factory=lambda: os.environ.get("BIDTRACE_INSECURE_LOCAL") == "1")
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("BIDTRACE_HUB_MAX_BODY", 8 * 1024 * 1024)))
    utc_offset_hours: int = 8
    tail_interval: float = 0.5  # seconds between reads of the notary log for the supervision feed
    deliver_interval: float = 0.5  # seconds between webhook delivery rounds
    deadline_interval: float = 5.0  # seconds between objection deadline checks
    inclusion_interval: float = 5.0  # seconds between checks that receipted leaves are in a signed checkpoint
    retry_base: float = 0.5  # first webhook retry delay; doubles per failure up to retry_max
    retry_max: float = 60.0
    webhook_timeout: float = 5.0
    beacon_wait: float = 30.0  # how long a draw waits for its commitment to be anchored
    schedule_interval: float = 1.0  # seconds between looks for scheduled draws (专家预约抽取) that are due
    objection_hours: float = 72.0  # default answer deadline of an objection
    objection_relay_hours: float = 24.0  # the lead venue relays an objection to the tenderer and supervisors
    complaint_accept_hours: float = 72.0  # a supervisor accepts or rejects a complaint (3 days)
    complaint_decision_hours: float = 720.0  # and decides an accepted one (30 days)

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"

    @property
    def registry_key_file(self) -> Path:
        """The misconduct registry's linkage keys, by version (see `hub.linkage`)."""
        return self.data_dir / "misconduct-registry-keys.json"

    @property
    def trusted_ca_dir(self) -> Path:
        """PEM certificates of the CAs whose certificates cloud signatures may use (多 CA 互认)."""
        return self.data_dir / "trusted-ca"
