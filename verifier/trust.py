"""Trust roots the user chose: notary checkpoint keys and ledger roots, and the local store that pins them.

Nothing an extract carries about keys is believed: the user passes published roots with `--trust FILE` or
pins them once with `bidtrace trust import FILE` (like SSH's known_hosts). Each root has a fingerprint,
`SHA256:` and the unpadded base64 of the SHA-256 of its key bytes (the raw Ed25519 key of a notary, the DER
SubjectPublicKeyInfo of an embedded ledger's key, the DER of each Fabric root certificate), so the user can
compare it with the fingerprint the province publishes.

File format (`bidtrace-trust/2`, RFC 8785 or any JSON without duplicate keys):
`{"format": "bidtrace-trust/2", "notaries": [{"log_id", "note_key"}], "ledgers": [{"ledger": "embedded" |
"fabric", "logs": [log ids], ...}]}`. An embedded ledger root is `{"ledger": "embedded", "logs", "org",
"public_key"}` (PEM); a Fabric root is the channel's roots as `verifier.fabric` reads them, with the tag
`"ledger": "fabric"` and `"logs"`. A ledger root vouches only for the anchors of the logs it names: a ledger
the user trusts for one city's log proves nothing about another log's checkpoints. Format 1 did not bind
ledgers to logs and is refused by name.
"""

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from verifier.canonical import canonical_bytes
from verifier.errors import MalformedInput
from verifier.note import NoteKey, parse_vkey
from verifier.signatures import load_public_key
from verifier.strict import exact_object, hex64, listed, parse_json, text

TRUST_FORMAT = "bidtrace-trust/2"
OLD_TRUST_FORMATS = ("bidtrace-trust/1",)
LEDGER_KINDS = ("embedded", "fabric")
MAX_TRUST_FILE = 4 * 1024 * 1024


def ledger_tag(value: Any, what: str) -> str:
    """The kind of ledger a value is of, as its tag `"ledger"` says: the one key every ledger format shares."""
    if not isinstance(value, dict):
        raise MalformedInput(f"{what} must be a JSON object, got {type(value).__name__}")
    kind = value.get("ledger")
    if kind not in LEDGER_KINDS:
        raise MalformedInput(f"{what} must be tagged \"ledger\": one of {', '.join(LEDGER_KINDS)}; got {kind!r:.40}")
    return str(kind)


def fingerprint(key_bytes: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_bytes).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class NotaryRoot:
    """A notary's published checkpoint key for one log."""

    log_id: str
    note_key: NoteKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.note_key.public_key)

    def describe(self) -> str:
        return f"notary of log {self.log_id!r}, checkpoint key {self.note_key.name} {self.fingerprint}"

    def encode(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "note_key": self.note_key.vkey()}

    @classmethod
    def parse(cls, value: Any, what: str) -> "NotaryRoot":
        value = exact_object(value, what, {"log_id", "note_key"})
        return cls(text(value, "log_id", what), parse_vkey(text(value, "note_key", what)))


def _certificate_fingerprints(pems: Any, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(pems, dict):
        raise MalformedInput(f"{what} must map MSP ids to PEM root certificates")
    found = []
    for msp, pem in sorted(pems.items()):
        if not isinstance(pem, str):
            raise MalformedInput(f"{what} {msp!r:.40} must be a PEM certificate as text, got {type(pem).__name__}")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except (ValueError, x509.InvalidVersion) as exc:
            raise MalformedInput(f"{what} {msp!r} is not a PEM certificate: {exc}") from exc
        found.append((str(msp), fingerprint(cert.public_bytes(serialization.Encoding.DER))))
    return tuple(found)


def _log_ids(value: Any, what: str) -> tuple[str, ...]:
    logs = listed(value, "logs", what)
    if not logs:
        raise MalformedInput(f"{what} logs must name at least one log id this ledger anchors")
    found = tuple(text(log_id, "log id", f"{what} logs") for log_id in logs)
    if len(set(found)) != len(found):
        raise MalformedInput(f"{what} logs names a log id twice")
    return tuple(sorted(found))


@dataclass(frozen=True)
class LedgerRoot:
    """What a ledger's anchor evidence is checked against, and the logs whose anchors it may vouch for.
    `body` is the ledger's root as the ledger publishes it, tag included, without the log bindings."""

    ledger: str  # the ledger's kind, as its tag "ledger" says: one of LEDGER_KINDS
    name: str
    body: dict[str, Any] = field(compare=False, hash=False)
    fingerprints: tuple[tuple[str, str], ...]
    logs: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """The ledger's identity: its key or its channel's roots, whichever logs it is bound to."""
        if self.ledger == "embedded":
            return self.fingerprints[0][1]
        return fingerprint(canonical_bytes(self.body))

    def anchors(self, log_id: str) -> bool:
        return log_id in self.logs

    def bound_to(self, logs: tuple[str, ...] | list[str]) -> "LedgerRoot":
        return LedgerRoot(self.ledger, self.name, self.body, self.fingerprints, tuple(sorted(set(logs))))

    def describe(self) -> str:
        bound = f", anchoring log{'s' if len(self.logs) != 1 else ''} {', '.join(repr(x) for x in self.logs)}"
        if self.ledger == "embedded":
            return f"embedded ledger of {self.name}, block key {self.fingerprint}{bound}"
        orgs = ", ".join(f"{msp} {fp}" for msp, fp in self.fingerprints)
        return f"Fabric channel {self.name} {self.fingerprint} (root certificates: {orgs}){bound}"

    def encode(self) -> dict[str, Any]:
        return {**self.body, "logs": list(self.logs)}

    @classmethod
    def parse(cls, value: Any, what: str) -> "LedgerRoot":
        """A ledger root as a trust file writes it: the ledger's own root and the logs it is bound to."""
        if not isinstance(value, dict):
            raise MalformedInput(f"{what} must be a JSON object")
        if "logs" not in value:
            raise MalformedInput(f"{what} names no logs: a ledger root must say which log ids it anchors")
        logs = _log_ids(value, what)
        return cls.of_ledger({k: v for k, v in value.items() if k != "logs"}, what).bound_to(logs)

    @classmethod
    def of_ledger(cls, value: Any, what: str) -> "LedgerRoot":
        """A ledger's root as the ledger publishes it, not yet bound to any log."""
        kind = ledger_tag(value, what)
        if kind == "embedded":
            value = exact_object(value, what, {"ledger", "org", "public_key"})
            pem = text(value, "public_key", what)
            key = load_public_key(pem)
            der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            org = text(value, "org", what)
            return cls("embedded", org, value, ((org, fingerprint(der)),))
        # otherwise "fabric", the only other kind
        value = exact_object(value, what, {"ledger", "channel", "chaincode", "genesis_block", "organizations",
                                           "orderers", "endorsement"})
        channel = text(value, "channel", what)
        text(value, "chaincode", what)
        hex64(value["genesis_block"], f"{what} genesis_block")
        rule = exact_object(value["endorsement"], f"{what} endorsement", {"rule"})["rule"]
        if rule != "MAJORITY":
            raise MalformedInput(f"{what} endorsement rule must be \"MAJORITY\", got {rule!r:.40}")
        prints = _certificate_fingerprints(value["organizations"], f"{what} organizations")
        prints += _certificate_fingerprints(value["orderers"], f"{what} orderers")
        return cls("fabric", channel, value, prints)


@dataclass(frozen=True)
class TrustRoots:
    """The roots a verification may rely on, chosen by the user. Empty means nothing is trusted."""

    notaries: tuple[NotaryRoot, ...] = ()
    ledgers: tuple[LedgerRoot, ...] = ()

    def notary(self, log_id: str) -> NotaryRoot | None:
        return next((n for n in self.notaries if n.log_id == log_id), None)

    def ledgers_for(self, ledger: str, log_id: str) -> list[LedgerRoot]:
        """The chosen roots of ledgers of kind `ledger` bound to `log_id`: the only ones whose anchors count for
        it."""
        return [root for root in self.ledgers if root.ledger == ledger and root.anchors(log_id)]

    def merged(self, other: "TrustRoots") -> "TrustRoots":
        notaries = list(self.notaries)
        for n in other.notaries:
            if n not in notaries:
                notaries.append(n)
        _one_notary_per_log(notaries, "the pinned roots and the imported ones")
        ledgers = list(self.ledgers)
        for root in other.ledgers:
            at = next((i for i, r in enumerate(ledgers) if r.fingerprint == root.fingerprint), None)
            if at is None:
                ledgers.append(root)
            else:  # one ledger, now bound to the logs of both
                ledgers[at] = ledgers[at].bound_to([*ledgers[at].logs, *root.logs])
        return TrustRoots(tuple(notaries), tuple(ledgers))

    def without(self, fingerprint_: str) -> "TrustRoots":
        return TrustRoots(tuple(n for n in self.notaries if n.fingerprint != fingerprint_),
                          tuple(r for r in self.ledgers if r.fingerprint != fingerprint_))

    def encode(self) -> bytes:
        return canonical_bytes({"format": TRUST_FORMAT, "notaries": [n.encode() for n in self.notaries],
                                "ledgers": [r.encode() for r in self.ledgers]})

    @classmethod
    def parse(cls, data: bytes, what: str = "trust roots") -> "TrustRoots":
        if len(data) > MAX_TRUST_FILE:
            raise MalformedInput(f"{what} is {len(data)} bytes, more than {MAX_TRUST_FILE}")
        value = exact_object(parse_json(data, what), what, {"format", "notaries", "ledgers"})
        if value["format"] in OLD_TRUST_FORMATS:
            raise MalformedInput(f"{what} is in format {value['format']}, which does not bind ledger roots to the "
                                 f"logs they anchor and is no longer read; get the roots again in {TRUST_FORMAT} "
                                 "(`bidtrace notary roots` writes them) and import them anew")
        if value["format"] != TRUST_FORMAT:
            raise MalformedInput(f"{what} has format {value['format']!r:.40}, expected {TRUST_FORMAT}")
        notaries = tuple(NotaryRoot.parse(n, f"{what} notary #{i}")
                         for i, n in enumerate(listed(value, "notaries", what)))
        ledgers = tuple(LedgerRoot.parse(r, f"{what} ledger #{i}")
                        for i, r in enumerate(listed(value, "ledgers", what)))
        _one_notary_per_log(notaries, what)
        return cls(notaries, ledgers)

    def describe(self) -> list[str]:
        return [n.describe() for n in self.notaries] + [r.describe() for r in self.ledgers]


def _one_notary_per_log(notaries: list[NotaryRoot] | tuple[NotaryRoot, ...], what: str) -> None:
    """A log has one checkpoint key. With two, which one verify used would depend on the order of a file,
    and a key slipped in beside the genuine one would go unnoticed in `trust list`."""
    seen: dict[str, NotaryRoot] = {}
    for n in notaries:
        first = seen.setdefault(n.log_id, n)
        if first != n:
            raise MalformedInput(f"{what} name two checkpoint keys for log {n.log_id!r:.60}: {first.note_key.name} "
                                 f"{first.fingerprint} and {n.note_key.name} {n.fingerprint}; keep the one the "
                                 "log's operator publishes (`bidtrace trust remove` the other)")


def load_trust_file(path: Path) -> TrustRoots:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TRUST_FILE + 1)
    except OSError as exc:
        raise MalformedInput(f"cannot read trust roots {path}: {exc.strerror}") from exc
    return TrustRoots.parse(data, f"trust roots {path.name}")


class TrustStore:
    """The user's pinned roots, one file. `BIDTRACE_TRUST_STORE` names it; the default lives in the user's
    configuration folder, so pinning is a deliberate act of that user and of nobody else."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_store_path()

    def load(self) -> TrustRoots:
        if not self.path.exists():
            return TrustRoots()
        return load_trust_file(self.path)

    def save(self, roots: TrustRoots) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_bytes(roots.encode())
        os.replace(partial, self.path)

    def import_file(self, path: Path) -> TrustRoots:
        """Pin the roots in `path`; return those that were new."""
        current = self.load()
        added = load_trust_file(path)
        merged = current.merged(added)
        self.save(merged)
        return TrustRoots(tuple(n for n in merged.notaries if n not in current.notaries),
                          tuple(r for r in merged.ledgers if r not in current.ledgers))

    def remove(self, fingerprint_: str) -> int:
        current = self.load()
        kept = current.without(fingerprint_)
        removed = len(current.notaries) + len(current.ledgers) - len(kept.notaries) - len(kept.ledgers)
        if removed:
            self.save(kept)
        return removed


def default_store_path() -> Path:
    named = os.environ.get("BIDTRACE_TRUST_STORE")
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bidtrace" / "trust.json"
