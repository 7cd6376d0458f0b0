"""Face verification at check-in (刷脸 / 专家进场生物识别): the `face_match` a check-in record carries, and the
checks that a roster's "identity verified" rests on one, and that one check-in serves one expert.

A check-in station compares the face in the photo with the expert's enrolled photo (1:1) and writes what
it found: the decision, the Euclidean distance between the two face embeddings, the threshold it decided
against, the model that made the embeddings (its name and the SHA-256 of its weights). Distance and
threshold are rounded to `PLACES` decimals before the decision is taken, so the record can never say
"match" for a distance above its threshold or the reverse. The photo itself never enters the log.
"""

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from verifier.entry import LogEntry
from verifier.errors import MalformedInput
from verifier.findings import Finding
from verifier.strict import exact_object, hex64, text

FaceDecision = Literal["match", "no_match"]
DECISIONS: tuple[FaceDecision, ...] = ("match", "no_match")
PLACES = 4
MAX_MODEL_NAME = 200
_FIELDS = frozenset({"decision", "distance", "threshold", "model", "model_sha256"})
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,:;()@+\-]*")


def rounded(value: float) -> float:
    return round(float(value), PLACES)


@dataclass(frozen=True)
class FaceMatch:
    """One 1:1 comparison of a check-in photo with the enrolled photo of the expert it claims to be."""

    decision: FaceDecision
    distance: float
    threshold: float
    model: str  # name and version of the embedding model, e.g. "dlib_face_recognition_resnet_model_v1 (...)"
    model_sha256: str  # SHA-256 of the model's weights file, lower-case hex

    @classmethod
    def decide(cls, distance: float, threshold: float, model: str, model_sha256: str) -> "FaceMatch":
        """The decision for `distance` against `threshold`, both rounded first: match iff distance <= threshold."""
        d, t = rounded(distance), rounded(threshold)
        return cls.from_json({"decision": "match" if d <= t else "no_match", "distance": d, "threshold": t,
                              "model": model, "model_sha256": model_sha256}, "face match")

    @property
    def matched(self) -> bool:
        return self.decision == "match"

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "distance": self.distance, "threshold": self.threshold,
                "model": self.model, "model_sha256": self.model_sha256}

    @classmethod
    def from_json(cls, value: Any, what: str = "face_match") -> "FaceMatch":
        """Parse strictly: exactly the five fields, numbers in range with at most `PLACES` decimals, the
        model named, and a decision that agrees with distance and threshold. Raise MalformedInput naming
        what is wrong."""
        obj = exact_object(value, what, _FIELDS)
        decision = obj["decision"]
        if decision not in DECISIONS:
            raise MalformedInput(f"{what} decision must be one of {', '.join(DECISIONS)}, got {decision!r:.40}")
        distance = _number(obj, "distance", what)
        threshold = _number(obj, "threshold", what)
        if threshold <= 0:
            raise MalformedInput(f"{what} threshold must be above 0, got {threshold}")
        model = text(obj, "model", what)
        if len(model) > MAX_MODEL_NAME or not _MODEL_NAME.fullmatch(model):
            raise MalformedInput(f"{what} model must name the model in at most {MAX_MODEL_NAME} letters, digits, "
                                 f"spaces and punctuation, got {model!r:.60}")
        hex64(obj["model_sha256"], f"{what} model_sha256")
        expected = "match" if distance <= threshold else "no_match"
        if decision != expected:
            relation = "<=" if distance <= threshold else ">"
            raise MalformedInput(f"{what} says {decision} but its distance {distance} {relation} threshold "
                                 f"{threshold}: expected {expected}")
        return cls(decision, distance, threshold, model, obj["model_sha256"])


def _number(obj: dict[str, Any], key: str, what: str) -> float:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedInput(f"{what} {key} must be a number, got {value!r:.40}")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 10:
        raise MalformedInput(f"{what} {key} must be between 0 and 10, got {value!r:.40}")
    if rounded(number) != number:
        raise MalformedInput(f"{what} {key} must have at most {PLACES} decimals, got {value!r:.40}")
    return number


def face_match_of(checkin: dict[str, Any]) -> FaceMatch | None:
    """The `face_match` of a check-in record's payload (None when it has none); MalformedInput if it is bad."""
    payload = checkin.get("payload")
    if not isinstance(payload, dict) or payload.get("face_match") is None:
        return None
    return FaceMatch.from_json(payload["face_match"])


def identity_verified(checkin: dict[str, Any]) -> str | None:
    """None when the check-in record verifies its expert's identity by face; otherwise why it does not."""
    if checkin.get("type") != "checkin":
        return f"it is a {str(checkin.get('type'))[:40]} record, not a check-in"
    payload = checkin.get("payload")
    if not isinstance(payload, dict):
        return "its payload is not an object"
    try:
        found = face_match_of(checkin)
    except MalformedInput as exc:
        return f"its face_match does not hold: {exc}"
    if found is None:
        return f"it carries no face comparison (result {str(payload.get('result'))[:20]})"
    if not found.matched:
        return f"its face comparison says {found.decision} (distance {found.distance} > threshold {found.threshold})"
    if payload.get("result") != "matched":
        return f"its face comparison says match but its result is {str(payload.get('result'))[:20]}"
    return None


def roster_identities(entries: list[LogEntry]) -> list[Finding]:
    """Per roster: every expert marked "present — identity verified" rests on a check-in record of the same
    session whose face comparison says match (distance within threshold, model named); the experts present
    but unverified are counted and named, never hidden. Over all rosters: one check-in serves one expert."""
    by_leaf = {e.leaf_index: e for e in entries}
    served: dict[int, set[str]] = defaultdict(set)
    findings = []
    for roster in (e for e in entries if e.record.get("type") == "roster"):
        payload = roster.record.get("payload", {})
        name = f"roster {payload.get('roster_id')} identities"
        problems: list[str] = []
        verified: list[str] = []
        unverified: list[str] = []
        for item in payload.get("experts", []):
            expert, leaf = str(item.get("expert_id")), item.get("checkin_leaf")
            if isinstance(leaf, int):
                served[leaf].add(expert)
            if item.get("status") != "present":
                continue
            if item.get("identity") != "verified":
                unverified.append(expert)
                continue
            checkin = by_leaf.get(leaf) if isinstance(leaf, int) else None
            if checkin is None:
                problems.append(f"{expert} is marked identity verified but its check-in (leaf {leaf}) is not "
                                "in the extract")
                continue
            if checkin.record.get("session_id") != roster.record.get("session_id"):
                problems.append(f"{expert} is marked identity verified on leaf {leaf}, a check-in of session "
                                f"{str(checkin.record.get('session_id'))[:60]}")
                continue
            why = identity_verified(checkin.record)
            if why is not None:
                problems.append(f"{expert} is marked identity verified but check-in leaf {leaf} does not "
                                f"verify it: {why}")
            else:
                verified.append(expert)
        if problems:
            findings.append(Finding(name, False, "; ".join(problems[:4])))
        else:
            findings.append(Finding(name, True, _identities(verified, unverified)))
    for leaf, experts in sorted(served.items()):
        if len(experts) > 1:
            findings.append(Finding(f"check-in at leaf {leaf}", False,
                                    f"one check-in is attached to {len(experts)} experts "
                                    f"({', '.join(sorted(experts)[:5])}); a check-in serves exactly one expert"))
    return findings


def _identities(verified: list[str], unverified: list[str]) -> str:
    parts = [f"{len(verified)} present — identity verified by face"
             + (f" ({', '.join(verified[:8])}{'…' if len(verified) > 8 else ''})" if verified else "")]
    if unverified:
        parts.append(f"{len(unverified)} present — unverified ({', '.join(unverified[:8])}"
                     f"{'…' if len(unverified) > 8 else ''})")
    return "; ".join(parts)
