"""The record formats of objections, complaints and misconduct cases: one encoder, one strict parser; the
registry's linkage keys, versioned, with older versions still found; the month a record counts in and the
odds behind a favoured-expert signal."""

from pathlib import Path

import pytest

from hub.linkage import LinkageKeyError, LinkageKeys, party_of
from verifier.cases import ComplaintRecord, Delivery, MisconductRecord, ObjectionRecord, RelayTarget
from verifier.commitments import linkage_salt
from verifier.errors import CommitmentError, MalformedInput
from verifier.signals import at_least
from verifier.statistics import monthly_statistics

C = "c1:" + "ab" * 32
T = "2026-11-26T10:00:00+08:00"


def test_each_format_reads_back_what_it_wrote() -> None:
    objection = ObjectionRecord("O-1", "answered", C, "评分有误", "V-1", T, T,
                                (RelayTarget("tenderer-1", "tenderer"), RelayTarget("supervisor-1", "supervisor")),
                                "维持原结果", "tenderer-1")
    complaint = ComplaintRecord("C-1", "decided", C, "supervisor-1", "投诉", T, "O-1", T, None, "驳回")
    case = MisconductRecord("M-1", "forwarded", "bidder", C, "c1:" + "cd" * 32, "k2", "围标", (3, 4), "supervisor-1",
                            Delivery("http://127.0.0.1:9/intake", "0" * 64, "R-1", T, "A" * 88))
    for record in (objection, complaint, case):
        assert type(record).parse(record.encode()) == record


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"objection_id": "O-1", "status": "received", "filed_by_commitment": C, "summary": "s", "answer": None},
     "absent, never null: answer"),
    ({"objection_id": "O-1", "status": "received", "filed_by_commitment": C, "summary": "s", "note": "x"},
     "unknown field 'note'"),
    ({"objection_id": "O-1", "status": "answered", "filed_by_commitment": C, "summary": "s", "answer": "a"},
     "answer and answered_by go together"),
    ({"objection_id": "O-1", "status": "relayed", "filed_by_commitment": C, "summary": "s", "relayed_to": [
        {"principal_id": "bidder-1", "role": "bidder"}]}, "role must be one of tenderer, supervisor"),
    ({"objection_id": "O-1", "status": "received", "filed_by_commitment": "c1:00", "summary": "s"},
     "filed_by_commitment must be a commitment"),
    ({"objection_id": "O-1", "status": "received", "filed_by_commitment": C, "summary": "s", "deadline": "tomorrow"},
     "deadline is not an RFC 3339"),
])
def test_a_malformed_objection_is_refused_naming_what_is_wrong(payload: dict[str, object], fragment: str) -> None:
    with pytest.raises(MalformedInput, match=fragment):
        ObjectionRecord.parse(payload)


def test_complaint_and_misconduct_states_carry_what_they_need() -> None:
    base = {"complaint_id": "C-1", "filed_by_commitment": C, "supervisor_id": "s-1", "summary": "s",
            "accept_deadline": T}
    with pytest.raises(MalformedInput, match="says why"):
        ComplaintRecord.parse({**base, "status": "rejected"})
    with pytest.raises(MalformedInput, match="decision_deadline"):
        ComplaintRecord.parse({**base, "status": "accepted"})
    case = {"case_id": "M-1", "subject_kind": "bidder", "subject_commitment": C, "linkage_commitment": C,
            "linkage_key": "k1", "description": "d", "evidence": [1]}
    with pytest.raises(MalformedInput, match="delivery with its receipt"):
        MisconductRecord.parse({**case, "status": "forwarded", "forwarded_to": "s-1"})
    with pytest.raises(MalformedInput, match="names its evidence"):
        MisconductRecord.parse({**case, "status": "published", "evidence": []})
    with pytest.raises(MalformedInput, match="key version"):
        MisconductRecord.parse({**case, "status": "recorded", "linkage_key": "latest"})


def test_linkage_keys_rotate_and_older_cases_stay_found(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = LinkageKeys.load_or_create(path)
    assert LinkageKeys.load_or_create(path) == keys and path.stat().st_mode & 0o077 == 0
    rotated = keys.rotated()
    group, party = party_of("bidder", "91370200ma3d6xxxx2")
    assert (group, party) == ("organisation", "91370200MA3D6XXXX2")
    linkages = rotated.linkages(group, party)
    assert rotated.current == "k2" and set(linkages) == {"k1", "k2"} and linkages["k1"] == keys.linkages(
        group, party)["k1"] != linkages["k2"]
    # An organisation and an expert with the same text are different parties.
    assert linkage_salt(keys.keys["k1"], "organisation", party) != linkage_salt(keys.keys["k1"], "expert", party)
    with pytest.raises(CommitmentError, match="at least 32 bytes"):
        linkage_salt(b"short", "expert", party)
    path.write_text('{"current": "k3", "keys": {"k1": "' + "00" * 32 + '"}}')
    path.chmod(0o600)
    with pytest.raises(LinkageKeyError, match="current version 'k3' has no key"):
        LinkageKeys.load_or_create(path)
    with pytest.raises(ValueError, match="unified social credit code"):
        party_of("agency", "12345")


def test_statistics_count_a_record_in_the_province_month_and_each_leaf_once() -> None:
    def booking(leaf: int, at: str, action: str) -> tuple[int, dict[str, object]]:
        return leaf, {"type": "booking", "session_id": "S-1", "occurred_at": at,
                      "payload": {"action": action, "venue_id": "V-2"}}

    records = [booking(1, "2026-11-30T17:30:00+00:00", "offered"),  # 01:30 on 1 December in UTC+8
               booking(2, "2026-11-30T15:59:00Z", "declined"),  # 23:59 on 30 November in UTC+8
               booking(1, "2026-11-30T17:30:00+00:00", "offered")]  # the same leaf again
    december = monthly_statistics(records, "2026-12")
    assert december.records == 1 and december.venues[0].encode() == {"venue_id": "V-2", "offered": 1,
                                                                      "confirmed": 0, "declined": 0}
    assert monthly_statistics(records, "2026-11").venues[0].declined == 1
    with pytest.raises(MalformedInput, match="YYYY-MM"):
        monthly_statistics(records, "2026-1")


def test_the_chance_of_a_favoured_expert_is_exact() -> None:
    assert at_least(0, [0.3, 0.6]) == pytest.approx(1.0)
    assert at_least(2, [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert at_least(3, [0.1] * 3) == pytest.approx(0.001)
    assert at_least(4, [0.1] * 3) == 0.0
