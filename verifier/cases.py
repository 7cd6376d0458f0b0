"""Objections (异议/质疑), complaints (投诉) and misconduct cases (不当行为): their record payloads, one
encoder and one strict parser each, and the checks `bidtrace verify` runs over a project's cases.

Every producer writes these payloads with `encode` and the notary accepts them only through `parse`, so
the log and the verifier read the same shape. Optional fields are absent, never null. The checks ask
what the plan asks of the handling: an objection is relayed by its lead venue before its relay deadline
and answered only by a party it was relayed to; a complaint is accepted or rejected by the supervisor it
is addressed to before its deadline, and decided only once accepted; a misconduct case keeps one
subject, its published linkage opens to one party only, and a forwarded case names the very document
that the log says was forwarded.
"""

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from verifier.canonical import canonical_bytes
from verifier.commitments import Disclosure, is_commitment
from verifier.entry import LogEntry
from verifier.errors import MalformedInput
from verifier.findings import Finding
from verifier.times import parse_time

IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
KEY_VERSION = re.compile(r"k[1-9][0-9]{0,5}")
MAX_TEXT = 4000
FORWARD_DOCUMENT = "bidtrace-misconduct-case/1"


# ----- field readers -----

def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not IDENT.fullmatch(value):
        raise MalformedInput(f"{what} must be an identifier ({IDENT.pattern}), got {value!r:.60}")
    return value


def _text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise MalformedInput(f"{what} must be text of 1 to {limit} characters, got {str(value)[:40]!r}")
    return value


def _time(value: Any, what: str) -> str:
    parse_time(value, what)
    return str(value)


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise MalformedInput(f"{what} must be one of {', '.join(choices)}, got {value!r:.60}")
    return str(value)


def _commitment(value: Any, what: str) -> str:
    if not is_commitment(value):
        raise MalformedInput(f"{what} must be a commitment c1:<64 hex>, got {str(value)[:24]!r}")
    return str(value)


def _fields(value: Any, what: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedInput(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = sorted(required - set(value))
    unknown = sorted(set(value) - required - optional)
    if missing:
        raise MalformedInput(f"{what}: missing field {', '.join(missing)}")
    if unknown:
        raise MalformedInput(f"{what}: unknown field {', '.join(repr(k)[:40] for k in unknown[:5])}")
    nulls = sorted(k for k in optional if k in value and value[k] is None)
    if nulls:
        raise MalformedInput(f"{what}: an optional field is absent, never null: {', '.join(nulls)}")
    return value


def _opt(value: dict[str, Any], key: str, read: Any, *args: Any) -> Any:
    return read(value[key], f"{key}", *args) if key in value else None


def _present(pairs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pairs.items() if v is not None}


# ----- objections -----

OBJECTION_STATUSES = ("received", "under_review", "relayed", "answered", "withdrawn")
OBJECTION_OPEN = ("received", "under_review", "relayed")
OBJECTION_ALARMS = ("deadline_missed", "relay_overdue")
RELAY_ROLES = ("tenderer", "supervisor")


@dataclass(frozen=True)
class RelayTarget:
    """A party the lead venue relayed an objection to: the tenderer (or its agency) or a supervisor."""

    principal_id: str
    role: str

    def encode(self) -> dict[str, str]:
        return {"principal_id": self.principal_id, "role": self.role}

    @classmethod
    def parse(cls, value: Any, what: str) -> Self:
        v = _fields(value, what, {"principal_id", "role"}, set())
        return cls(_ident(v["principal_id"], f"{what} principal_id"), _choice(v["role"], f"{what} role", RELAY_ROLES))


@dataclass(frozen=True)
class ObjectionRecord:
    """One state of an objection. `deadline` is the answer deadline, `relay_deadline` the lead venue's;
    `answered_by` names the relayed party whose answer this record carries; `alarm` marks a missed one."""

    objection_id: str
    status: str
    filed_by_commitment: str
    summary: str
    lead_venue_id: str | None = None
    deadline: str | None = None
    relay_deadline: str | None = None
    relayed_to: tuple[RelayTarget, ...] = ()
    answer: str | None = None
    answered_by: str | None = None
    alarm: str | None = None

    TEXTS = ("summary", "answer")

    def encode(self) -> dict[str, Any]:
        out = _present({"objection_id": self.objection_id, "status": self.status,
                        "filed_by_commitment": self.filed_by_commitment, "summary": self.summary,
                        "lead_venue_id": self.lead_venue_id, "deadline": self.deadline,
                        "relay_deadline": self.relay_deadline, "answer": self.answer,
                        "answered_by": self.answered_by, "alarm": self.alarm})
        if self.relayed_to:
            out["relayed_to"] = [t.encode() for t in self.relayed_to]
        return out

    @classmethod
    def parse(cls, value: Any, what: str = "objection") -> Self:
        v = _fields(value, what, {"objection_id", "status", "filed_by_commitment", "summary"},
                    {"lead_venue_id", "deadline", "relay_deadline", "relayed_to", "answer", "answered_by", "alarm"})
        relayed = v.get("relayed_to", [])
        if not isinstance(relayed, list) or len(relayed) > 100 or ("relayed_to" in v and not relayed):
            raise MalformedInput(f"{what} relayed_to must be a list of 1 to 100 parties")
        record = cls(
            _ident(v["objection_id"], "objection_id"), _choice(v["status"], "status", OBJECTION_STATUSES),
            _commitment(v["filed_by_commitment"], "filed_by_commitment"), _text(v["summary"], "summary"),
            _opt(v, "lead_venue_id", _ident), _opt(v, "deadline", _time), _opt(v, "relay_deadline", _time),
            tuple(RelayTarget.parse(t, f"{what} relayed_to[{i}]") for i, t in enumerate(relayed)),
            _opt(v, "answer", _text), _opt(v, "answered_by", _ident), _opt(v, "alarm", _choice, OBJECTION_ALARMS))
        if (record.answer is None) != (record.answered_by is None):
            raise MalformedInput(f"{what}: an answer names who answered (answer and answered_by go together)")
        return record


# ----- complaints -----

COMPLAINT_STATUSES = ("filed", "accepted", "rejected", "decided", "withdrawn")
COMPLAINT_OPEN = ("filed", "accepted")
COMPLAINT_ALARMS = ("acceptance_overdue", "decision_overdue")


@dataclass(frozen=True)
class ComplaintRecord:
    """One state of a complaint (投诉) to the supervisor `supervisor_id`: filed, then accepted (受理) or
    rejected (不予受理, with `reason`), then decided (处理决定, `decision`). `objection_id` names the
    objection raised first where the rules require one."""

    complaint_id: str
    status: str
    filed_by_commitment: str
    supervisor_id: str
    summary: str
    accept_deadline: str
    objection_id: str | None = None
    decision_deadline: str | None = None
    reason: str | None = None
    decision: str | None = None
    alarm: str | None = None

    TEXTS = ("summary", "reason", "decision")

    def encode(self) -> dict[str, Any]:
        return _present({"complaint_id": self.complaint_id, "status": self.status,
                         "filed_by_commitment": self.filed_by_commitment, "supervisor_id": self.supervisor_id,
                         "summary": self.summary, "accept_deadline": self.accept_deadline,
                         "objection_id": self.objection_id, "decision_deadline": self.decision_deadline,
                         "reason": self.reason, "decision": self.decision, "alarm": self.alarm})

    @classmethod
    def parse(cls, value: Any, what: str = "complaint") -> Self:
        v = _fields(value, what, {"complaint_id", "status", "filed_by_commitment", "supervisor_id", "summary",
                                  "accept_deadline"},
                    {"objection_id", "decision_deadline", "reason", "decision", "alarm"})
        record = cls(
            _ident(v["complaint_id"], "complaint_id"), _choice(v["status"], "status", COMPLAINT_STATUSES),
            _commitment(v["filed_by_commitment"], "filed_by_commitment"), _ident(v["supervisor_id"], "supervisor_id"),
            _text(v["summary"], "summary"), _time(v["accept_deadline"], "accept_deadline"),
            _opt(v, "objection_id", _ident), _opt(v, "decision_deadline", _time), _opt(v, "reason", _text),
            _opt(v, "decision", _text), _opt(v, "alarm", _choice, COMPLAINT_ALARMS))
        if record.status == "rejected" and record.reason is None:
            raise MalformedInput(f"{what}: a rejected complaint says why (reason)")
        if record.status == "decided" and record.decision is None:
            raise MalformedInput(f"{what}: a decided complaint carries its decision")
        if record.status in ("accepted", "decided") and record.decision_deadline is None:
            raise MalformedInput(f"{what}: an accepted complaint has a decision_deadline")
        return record


# ----- misconduct -----

MISCONDUCT_STATUSES = ("recorded", "verified", "published", "forwarded")
SUBJECT_KINDS = ("tenderer", "agency", "bidder", "expert")


@dataclass(frozen=True)
class Delivery:
    """A forwarded case as its supervisor's registered endpoint received it: the SHA-256 of the document
    delivered (see `forward_document`), and the supervisor's signed receipt for it."""

    endpoint: str
    document_sha256: str
    receipt_id: str
    received_at: str
    signature: str

    def encode(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "document_sha256": self.document_sha256, "receipt_id": self.receipt_id,
                "received_at": self.received_at, "signature": self.signature}

    @classmethod
    def parse(cls, value: Any, what: str) -> Self:
        v = _fields(value, what, {"endpoint", "document_sha256", "receipt_id", "received_at", "signature"}, set())
        endpoint = v["endpoint"]
        if not isinstance(endpoint, str) or not re.fullmatch(r"https?://[\x21-\x7e]{1,1990}", endpoint):
            raise MalformedInput(f"{what} endpoint must be an http(s) URL, got {str(endpoint)[:40]!r}")
        digest = v["document_sha256"]
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise MalformedInput(f"{what} document_sha256 must be 64 lower-case hex characters")
        signature = v["signature"]
        if not isinstance(signature, str) or not re.fullmatch(r"[A-Za-z0-9+/]{40,400}={0,2}", signature):
            raise MalformedInput(f"{what} signature must be base64")
        return cls(endpoint, digest, _ident(v["receipt_id"], f"{what} receipt_id"),
                   _time(v["received_at"], f"{what} received_at"), signature)


@dataclass(frozen=True)
class MisconductRecord:
    """One state of a misconduct case. `subject_commitment` is salted afresh; `linkage_commitment` commits
    to the same party under a salt derived with the registry key `linkage_key` (see
    `verifier.commitments.linkage_salt`), so every case of one party carries the same linkage and authorised
    users can link them across projects, while nobody without the key can test a guessed credit code."""

    case_id: str
    status: str
    subject_kind: str
    subject_commitment: str
    linkage_commitment: str
    linkage_key: str
    description: str
    evidence: tuple[int, ...] = ()
    forwarded_to: str | None = None
    delivery: Delivery | None = None

    TEXTS = ("description",)

    def encode(self) -> dict[str, Any]:
        out = _present({"case_id": self.case_id, "status": self.status, "subject_kind": self.subject_kind,
                        "subject_commitment": self.subject_commitment,
                        "linkage_commitment": self.linkage_commitment, "linkage_key": self.linkage_key,
                        "description": self.description, "forwarded_to": self.forwarded_to})
        out["evidence"] = list(self.evidence)
        if self.delivery is not None:
            out["delivery"] = self.delivery.encode()
        return out

    @classmethod
    def parse(cls, value: Any, what: str = "misconduct") -> Self:
        v = _fields(value, what, {"case_id", "status", "subject_kind", "subject_commitment", "linkage_commitment",
                                  "linkage_key", "description", "evidence"}, {"forwarded_to", "delivery"})
        evidence = v["evidence"]
        if (not isinstance(evidence, list) or len(evidence) > 1000
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in evidence)):
            raise MalformedInput(f"{what} evidence must be a list of up to 1000 leaf indices")
        key = v["linkage_key"]
        if not isinstance(key, str) or not KEY_VERSION.fullmatch(key):
            raise MalformedInput(f"{what} linkage_key must be a key version like k1, got {key!r:.20}")
        record = cls(
            _ident(v["case_id"], "case_id"), _choice(v["status"], "status", MISCONDUCT_STATUSES),
            _choice(v["subject_kind"], "subject_kind", SUBJECT_KINDS),
            _commitment(v["subject_commitment"], "subject_commitment"),
            _commitment(v["linkage_commitment"], "linkage_commitment"), key, _text(v["description"], "description"),
            tuple(evidence), _opt(v, "forwarded_to", _ident),
            Delivery.parse(v["delivery"], f"{what} delivery") if "delivery" in v else None)
        if record.status in ("published", "forwarded") and not record.evidence:
            raise MalformedInput(f"{what}: a {record.status} misconduct record names its evidence leaves")
        if (record.status == "forwarded") != (record.forwarded_to is not None and record.delivery is not None):
            raise MalformedInput(f"{what}: a forwarded record, and only it, names the supervisor it went to "
                                 "(forwarded_to) and the delivery with its receipt")
        return record


FORMATS: dict[str, Any] = {"objection": ObjectionRecord, "complaint": ComplaintRecord,
                           "misconduct": MisconductRecord}


def forward_document(project_id: str, case: MisconductRecord, earlier: list[tuple[int, str]]) -> bytes:
    """The canonical document a forwarded case delivers: what the case says and the leaves (index and hash)
    of its records before the forward, so a receiver can ask the log for each and a verifier can recompute it."""
    return canonical_bytes({
        "format": FORWARD_DOCUMENT, "project_id": project_id, "case_id": case.case_id,
        "subject_kind": case.subject_kind, "linkage_commitment": case.linkage_commitment,
        "linkage_key": case.linkage_key, "description": case.description, "evidence": list(case.evidence),
        "records": [{"leaf_index": leaf, "leaf_hash": digest} for leaf, digest in earlier]})


def receipt_message(document_sha256: str, receipt_id: str, received_at: str) -> bytes:
    """What a supervisor's endpoint signs to acknowledge a forwarded case."""
    return b"bidtrace/forward-receipt/v1\n" + canonical_bytes(
        {"document_sha256": document_sha256, "receipt_id": receipt_id, "received_at": received_at})


# ----- the checks -----

def _at(value: str | None) -> datetime | None:
    try:
        return parse_time(value, "time") if value else None
    except MalformedInput:
        return None


def _received(entry: LogEntry) -> datetime | None:
    return _at(entry.received_at)


def _cases(entries: list[LogEntry], kind: str, key: str) -> dict[str, list[tuple[LogEntry, Any]]]:
    """The records of one type grouped by case id, in log order, each parsed; an unparsable one raises."""
    found: dict[str, list[tuple[LogEntry, Any]]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") == kind:
            parsed = FORMATS[kind].parse(e.record.get("payload"), f"{kind} at leaf {e.leaf_index}")
            found[getattr(parsed, key)].append((e, parsed))
    return found


def _last_time(entries: list[LogEntry]) -> datetime | None:
    times = [t for t in (_received(e) for e in entries) if t is not None]
    return max(times) if times else None


def objections_handled(entries: list[LogEntry]) -> list[Finding]:
    """Each objection: filed first; relayed by its lead venue before its relay deadline, if the log runs past
    it; answered only after a relay and only by a party it was relayed to."""
    now = _last_time(entries)
    findings = []
    for objection_id, states in _cases(entries, "objection", "objection_id").items():
        name = f"objection {objection_id}"
        problems: list[str] = []
        late: list[str] = []
        first_entry, first = states[0]
        if first.status != "received" or first.answer is not None:
            problems.append(f"its first record (leaf {first_entry.leaf_index}) is {first.status}, not its filing: "
                            "an answer or a step without the objection")
        relays = [(e, s) for e, s in states if s.status == "relayed" and s.alarm is None and s.answer is None]
        targets = {t.principal_id for _, s in relays for t in s.relayed_to}
        for e, s in states:
            if s.answer is None:
                continue
            if not relays or relays[0][0].leaf_index > e.leaf_index:
                problems.append(f"leaf {e.leaf_index} answers it before any relay")
            elif s.answered_by not in targets:
                problems.append(f"leaf {e.leaf_index} is an answer by {s.answered_by}, to whom it was not relayed")
        problems += _late("relayed", first.relay_deadline, relays[0][0] if relays else None, states, now,
                          "relay_overdue", late)
        if problems:
            findings.append(Finding(name, False, "; ".join(problems[:4])))
        else:
            answers = [s.answered_by for _, s in states if s.answer is not None]
            relayed = f"relayed to {', '.join(sorted(targets))}" if targets else "not relayed"
            findings.append(Finding(name, True, "; ".join([
                states[-1][1].status, relayed, *([f"answered by {', '.join(answers)}"] if answers else []), *late])))
    return findings


def complaints_handled(entries: list[LogEntry]) -> list[Finding]:
    """Each complaint: filed first; accepted or rejected before its acceptance deadline (if the log runs past
    it); decided only after acceptance and before its decision deadline; addressed to one supervisor."""
    now = _last_time(entries)
    findings = []
    for complaint_id, states in _cases(entries, "complaint", "complaint_id").items():
        name = f"complaint {complaint_id}"
        problems: list[str] = []
        late: list[str] = []
        first_entry, first = states[0]
        if first.status != "filed":
            problems.append(f"its first record (leaf {first_entry.leaf_index}) is {first.status}, not its filing")
        if any(s.supervisor_id != first.supervisor_id for _, s in states):
            problems.append("its records name different supervisors")
        steps = [(e, s) for e, s in states if s.alarm is None]
        answered = next(((e, s) for e, s in steps if s.status in ("accepted", "rejected")), None)
        for e, s in steps:
            if s.status == "decided" and (answered is None or answered[1].status != "accepted"
                                          or answered[0].leaf_index > e.leaf_index):
                problems.append(f"leaf {e.leaf_index} decides it without its acceptance")
        problems += _late("accepted or rejected", first.accept_deadline, answered[0] if answered else None,
                          states, now, "acceptance_overdue", late)
        if answered is not None and answered[1].status == "accepted":
            decided = next((e for e, s in steps if s.status == "decided"), None)
            problems += _late("decided", answered[1].decision_deadline, decided, states, now, "decision_overdue",
                              late)
        if problems:
            findings.append(Finding(name, False, "; ".join(problems[:4])))
        else:
            findings.append(Finding(name, True, "; ".join([
                steps[-1][1].status if steps else first.status, f"addressed to {first.supervisor_id}", *late])))
    return findings


def _late(what: str, deadline_text: str | None, done: LogEntry | None, states: list[tuple[LogEntry, Any]],
          now: datetime | None, alarm_name: str, late: list[str]) -> list[str]:
    """A missed deadline: a problem when no alarm was raised for it (the miss was kept quiet); when one was,
    a proven fact of the handling, added to `late` for the finding to say, not a fault of the evidence."""
    deadline = _at(deadline_text)
    if deadline is None:
        return []
    withdrawn = next((e for e, s in states if s.status == "withdrawn"), None)
    ended = [t for t in (_received(x) for x in (done, withdrawn) if x is not None) if t is not None]
    end = min(ended) if ended else now
    if end is None or end <= deadline:
        return []
    missed = f"{'not ' + what if done is None else what + ' late'} by its deadline {deadline_text}"
    alarm = next((e.leaf_index for e, s in states if s.alarm == alarm_name), None)
    if alarm is None:
        return [f"{missed} and no alarm was raised"]
    late.append(f"{missed} (alarm raised at leaf {alarm})")
    return []


_ORDER = {status: i for i, status in enumerate(MISCONDUCT_STATUSES)}


def misconduct_linkage(entries: list[LogEntry], leaf_hashes: Mapping[int, bytes],
                       disclosures: Mapping[int, tuple[Disclosure, ...]]) -> list[Finding]:
    """Each misconduct case: one subject and one linkage throughout, steps in order; a published case names
    evidence that is in the extract; where the extract discloses a case's commitments, its linkage opens to
    the same party as its subject, and one party has one linkage per registry key; a forwarded case
    delivered exactly the document its earlier records make."""
    cases = _cases(entries, "misconduct", "case_id")
    opened: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (key, kind group, party) -> linkages
    party_of: dict[str, str] = {}
    problems: dict[str, list[str]] = defaultdict(list)
    for case_id, states in cases.items():
        first_entry, first = states[0]
        if first.status != "recorded":
            problems[case_id].append(
                f"its first record (leaf {first_entry.leaf_index}) is {first.status}, not recorded")
        for (_, before), (e, s) in itertools.pairwise(states):
            if _ORDER[s.status] != _ORDER[before.status] + 1:
                problems[case_id].append(f"leaf {e.leaf_index} goes from {before.status} to {s.status}")
        for e, s in states:
            if (s.subject_kind, s.subject_commitment, s.linkage_commitment, s.linkage_key) != (
                    first.subject_kind, first.subject_commitment, first.linkage_commitment, first.linkage_key):
                problems[case_id].append(
                    f"leaf {e.leaf_index} names another subject or linkage than the case's first record")
            if s.status in ("published", "forwarded"):
                absent = [leaf for leaf in s.evidence if leaf not in leaf_hashes or leaf >= e.leaf_index]
                if absent:
                    problems[case_id].append(f"leaf {e.leaf_index} names evidence {', '.join(map(str, absent[:5]))} "
                                             "that is not an earlier record of the extract")
            values = {d.field: d.value for d in disclosures.get(e.leaf_index, ())}
            party = values.get("linkage_commitment")
            if party is not None:
                group = "expert" if s.subject_kind == "expert" else "organisation"
                opened[(s.linkage_key, group, party)].add(s.linkage_commitment)
                party_of[case_id] = party
                subject = values.get("subject_commitment")
                if subject is not None and subject != party:
                    problems[case_id].append(
                        f"leaf {e.leaf_index}: its linkage opens to another party than its subject")
            if s.delivery is not None:
                earlier = [(x.leaf_index, leaf_hashes[x.leaf_index].hex()) for x, _ in states
                           if x.leaf_index < e.leaf_index and x.leaf_index in leaf_hashes]
                digest = hashlib.sha256(forward_document(e.project_id, s, earlier)).hexdigest()
                if digest != s.delivery.document_sha256:
                    problems[case_id].append(f"leaf {e.leaf_index} says it delivered document "
                                             f"{s.delivery.document_sha256[:16]}…, but the case's records make "
                                             f"{digest[:16]}…")
    for (key, _, _), linkages in opened.items():
        if len(linkages) > 1:
            for case_id, states in cases.items():
                if states[0][1].linkage_commitment in linkages and states[0][1].linkage_key == key:
                    problems[case_id].append(f"its party has {len(linkages)} different linkages under key {key}: "
                                             "its cases would not be linked")
    findings = []
    for case_id, states in cases.items():
        name = f"misconduct case {case_id}"
        if problems[case_id]:
            findings.append(Finding(name, False, "; ".join(problems[case_id][:4])))
            continue
        last = states[-1][1]
        linkage = ("linkage opened and consistent" if case_id in party_of
                   else "linkage not disclosed in this extract, consistent across the case")
        forwarded = (f"; delivered to {last.forwarded_to}, receipt {last.delivery.receipt_id}"
                     if last.delivery is not None else "")
        findings.append(Finding(name, True, f"{last.status}; {linkage}{forwarded}"))
    return findings
