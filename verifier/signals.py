"""First bid-rigging signals (围标串标预警) computed from log records: signals, not verdicts.

Each signal says what pattern was seen, why it is unusual, and lists the leaves it rests on, so that a
supervisor can check every one of them against the log (and a holder of an extract can recompute it):

- `expert_favoured`: one expert drawn for one tenderer's sessions far more often than the draws' own odds
  allow (each draw gives each pool member `count / pool size`; the chance of the observed number or more is
  computed exactly, as a sum of independent trials, and must fall below `FAVOURED_P`);
- `shared_device`, `shared_network`, `identical_document`: different bidders of one project submitting from
  one machine (机器码), from one network address, or the same document;
- `repeated_declines`: a venue declining at least `DECLINES` offers, at least half of those it was offered.

The tenderer of a session is the `tenderer_id` of its main venue's `reserved` booking; a bid is a
`bid_submission` record (`BidSubmission`), whose device and network are keyed tags, never in clear.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from verifier.errors import MalformedInput

FAVOURED_P = 0.01
FAVOURED_MIN = 3
DECLINES = 3
_HEX64 = re.compile(r"[0-9a-f]{64}")
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
LogRecord = tuple[int, Mapping[str, Any]]


@dataclass(frozen=True)
class BidSubmission:
    """A bid (投标文件) submitted by `bidder_id`: its document's SHA-256 and the machine and network it came
    from as keyed tags (`verifier.commitments.bid_tag`) under registry key version `tag_key`."""

    bid_id: str
    bidder_id: str
    document_sha256: str
    device_tag: str
    network_tag: str
    tag_key: str

    TEXTS = ()

    def encode(self) -> dict[str, str]:
        return {"bid_id": self.bid_id, "bidder_id": self.bidder_id, "document_sha256": self.document_sha256,
                "device_tag": self.device_tag, "network_tag": self.network_tag, "tag_key": self.tag_key}

    @classmethod
    def parse(cls, value: Any, what: str = "bid_submission") -> Self:
        fields = {"bid_id", "bidder_id", "document_sha256", "device_tag", "network_tag", "tag_key"}
        if not isinstance(value, dict) or set(value) != fields:
            found = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise MalformedInput(f"{what} must have exactly the fields {sorted(fields)}, got {found}")
        for name in ("bid_id", "bidder_id"):
            if not isinstance(value[name], str) or not _IDENT.fullmatch(value[name]):
                raise MalformedInput(f"{what} {name} must be an identifier, got {value[name]!r:.40}")
        for name in ("document_sha256", "device_tag", "network_tag"):
            if not isinstance(value[name], str) or not _HEX64.fullmatch(value[name]):
                raise MalformedInput(f"{what} {name} must be 64 lower-case hex characters")
        if not isinstance(value["tag_key"], str) or not re.fullmatch(r"k[1-9][0-9]{0,5}", value["tag_key"]):
            raise MalformedInput(f"{what} tag_key must be a key version like k1")
        return cls(value["bid_id"], value["bidder_id"], value["document_sha256"], value["device_tag"],
                   value["network_tag"], value["tag_key"])


@dataclass(frozen=True)
class Signal:
    kind: str
    subject: str
    explanation: str
    leaves: tuple[int, ...]

    def encode(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "explanation": self.explanation,
                "leaves": list(self.leaves)}


def bid_rigging_signals(records: Iterable[LogRecord]) -> list[Signal]:
    """Every signal the records show, in a stable order (kind, subject)."""
    ordered = sorted(dict(records).items())
    signals = _favoured_experts(ordered) + _shared_bids(ordered) + _declines(ordered)
    return sorted(signals, key=lambda s: (s.kind, s.subject))


def _payload(record: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = record.get("payload")
    return payload if isinstance(payload, Mapping) else {}


def at_least(k: int, chances: list[float]) -> float:
    """The chance that at least `k` of independent trials with these chances succeed (exact)."""
    dist = [1.0] + [0.0] * len(chances)
    for p in chances:
        for j in range(len(dist) - 1, 0, -1):
            dist[j] = dist[j] * (1 - p) + dist[j - 1] * p
        dist[0] *= 1 - p
    return sum(dist[k:])


def _favoured_experts(records: list[tuple[int, Mapping[str, Any]]]) -> list[Signal]:
    tenderer_of: dict[str, str] = {}
    commitments: dict[int, Mapping[str, Any]] = {}
    for leaf, record in records:
        payload = _payload(record)
        if record.get("type") == "booking" and payload.get("action") == "reserved" and payload.get("tenderer_id"):
            tenderer_of[str(record.get("session_id"))] = str(payload["tenderer_id"])
        elif record.get("type") == "draw_commitment":
            commitments[leaf] = payload
    # tenderer -> expert -> [(chance, selected, leaves)]
    trials: dict[str, dict[str, list[tuple[float, bool, tuple[int, int]]]]] = defaultdict(lambda: defaultdict(list))
    for leaf, record in records:
        tenderer = tenderer_of.get(str(record.get("session_id")))
        result = _payload(record)
        if record.get("type") != "draw_result" or tenderer is None:
            continue
        commitment_leaf = result.get("commitment_leaf")
        if not isinstance(commitment_leaf, int) or commitment_leaf not in commitments:
            continue
        commitment = commitments[commitment_leaf]
        count = commitment.get("count")
        if not isinstance(commitment.get("pool"), list) or not commitment["pool"] or not isinstance(count, int):
            continue
        pool, selected = [str(e) for e in commitment["pool"]], {str(e) for e in result.get("selected") or []}
        chance = min(1.0, max(count, 0) / len(pool))
        for expert in pool:
            trials[tenderer][expert].append((chance, expert in selected, (int(commitment_leaf), leaf)))
    signals = []
    for tenderer, experts in trials.items():
        for expert, draws in experts.items():
            drawn = [d for d in draws if d[1]]
            if len(drawn) < FAVOURED_MIN:
                continue
            p = at_least(len(drawn), [d[0] for d in draws])
            if p <= FAVOURED_P:
                expected = sum(d[0] for d in draws)
                signals.append(Signal(
                    "expert_favoured", f"{expert} for tenderer {tenderer}",
                    f"expert {expert} was drawn in {len(drawn)} of the {len(draws)} draws for tenderer {tenderer} "
                    f"whose pool held them, where the draws' own odds give {expected:.1f} on average; the chance "
                    f"of {len(drawn)} or more is {p:.1e}",
                    tuple(sorted({leaf for d in drawn for leaf in d[2]}))))
    return signals


def _shared_bids(records: list[tuple[int, Mapping[str, Any]]]) -> list[Signal]:
    groups: dict[tuple[str, str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for leaf, record in records:
        if record.get("type") != "bid_submission":
            continue
        try:
            bid = BidSubmission.parse(record.get("payload"))
        except MalformedInput:
            continue
        project = str(record.get("project_id"))
        for kind, value in (("shared_device", f"{bid.tag_key}:{bid.device_tag}"),
                            ("shared_network", f"{bid.tag_key}:{bid.network_tag}"),
                            ("identical_document", bid.document_sha256)):
            groups[(kind, project, value)][bid.bidder_id].append(leaf)
    what = {"shared_device": "from one machine (the same 机器码 tag)",
            "shared_network": "from one network address (the same tag)",
            "identical_document": "the same document (one SHA-256)"}
    signals = []
    for (kind, project, value), bidders in groups.items():
        if len(bidders) < 2:
            continue
        names = sorted(bidders)
        signals.append(Signal(kind, f"{', '.join(names)} in project {project}",
                              f"bidders {', '.join(names)} submitted bids of project {project} {what[kind]}: "
                              f"{value.split(':')[-1][:16]}…",
                              tuple(sorted(leaf for leaves in bidders.values() for leaf in leaves))))
    return signals


def _declines(records: list[tuple[int, Mapping[str, Any]]]) -> list[Signal]:
    offered: dict[str, int] = defaultdict(int)
    declined: dict[str, list[int]] = defaultdict(list)
    for leaf, record in records:
        payload = _payload(record)
        if record.get("type") != "booking":
            continue
        venue = str(payload.get("venue_id"))
        if payload.get("action") == "offered":
            offered[venue] += 1
        elif payload.get("action") == "declined":
            declined[venue].append(leaf)
    return [Signal("repeated_declines", venue,
                   f"venue {venue} declined {len(leaves)} of the {offered[venue]} sessions offered to it",
                   tuple(leaves))
            for venue, leaves in declined.items()
            if len(leaves) >= DECLINES and 2 * len(leaves) >= offered[venue]]
