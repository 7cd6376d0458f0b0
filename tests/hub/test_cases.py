"""Objections, complaints and the misconduct registry with their real shape, through the hub's HTTP API:
a bidder objects with its own key, the main venue relays, the tenderer answers; a bidder complains to a
supervisor; misconduct of one party links across projects under the registry key, the public sees only
published cases, and forwarding means a signed receipt from the supervisor's endpoint. Each promise is
also checked offline by `verify` on the project's extract."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.linkage import LinkageKeys
from notary.extract import build_extract
from tests.conftest import wait_until
from tests.hub.conftest import (
    BIDDER,
    MAIN,
    OTHER_BIDDER,
    OTHER_PROJECT,
    PROJECT,
    QD,
    SUPERVISOR,
    TENDERER,
    Stack,
    SupervisorDesk,
    published,
    setup_session,
)
from verifier.commitments import commit, linkage_salt, new_salt
from verifier.extract import ExtractReport, Verdict, verify_extract

CODE = "91370200MA3D6XXXX2"  # 青岛海建有限公司's unified social credit code


def _verify(st: Stack, tmp_path: Path, project: str = PROJECT, disclose: bool = False) -> ExtractReport:
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "the log to be anchored")
    path = tmp_path / f"{project}-{st.notary.log.size}.zip"
    path.write_bytes(build_extract(st.notary.log, st.notary.ledger, project, disclose=disclose))
    return verify_extract(path, published(st))


def _finding(report: ExtractReport, name: str) -> Any:
    found = [s for s in report.sessions if s.name == name]
    assert len(found) == 1, [s.name for s in report.sessions]
    return found[0]


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def test_a_bidder_objects_the_main_venue_relays_the_tenderer_answers(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    bidder, tenderer = st.as_key(BIDDER), st.as_key(TENDERER)
    st.as_key(OTHER_BIDDER).refused("POST", "/sessions/S-1/objections", {"summary": "评分有误"}, 403,
                                    f"not bound to project {PROJECT}")
    bidder.refused("POST", "/sessions/S-1/objections", {"summary": "评分有误", "deadline": _soon(5)}, 422,
                   "a bidder files as itself")
    o = bidder.call("POST", "/sessions/S-1/objections", {"summary": "对第三名评分有异议"}, 201)
    oid = o["objection_id"]
    filing = st.admin.get(f"/v1/records/{o['leaves'][0]}")["entry"]["record"]
    assert BIDDER.principal_id not in json.dumps(filing) and filing["payload"]["relay_deadline"]

    # The tenderer sees nothing before the relay; the bidder follows its own objection, another bidder not.
    tenderer.refused("GET", f"/objections/{oid}", None, 403, "was not relayed to")
    assert bidder.call("GET", f"/objections/{oid}")["status"] == "received"
    st.as_key(OTHER_BIDDER).refused("GET", f"/objections/{oid}", None, 403, "did not file")
    tenderer.refused("POST", f"/objections/{oid}/answer", {"answer": "x"}, 409, "is received")

    # The relay goes to the tenderer and the supervisors, registered parties only.
    lead = st.venue(MAIN)
    lead.refused("POST", f"/objections/{oid}/relay", {"to": [TENDERER.principal_id]}, 422, "at least one of each")
    lead.refused("POST", f"/objections/{oid}/relay", {"to": ["tenderer-nobody", SUPERVISOR.principal_id]}, 422,
                 "tenderer-nobody is not a registered")
    st.venue(QD).refused("POST", f"/objections/{oid}/relay",
                         {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]}, 403, f"led by the main venue {MAIN}")
    relayed = lead.call("POST", f"/objections/{oid}/relay", {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]})
    assert relayed["status"] == "relayed" and len(relayed["relayed_to"]) == 2

    # Each answer is its own record: the supervisor's opinion leaves it waiting for the tenderer's answer.
    opinion = st.as_key(SUPERVISOR).call("POST", f"/objections/{oid}/answer", {"answer": "请招标人复核并答复"})
    assert opinion["status"] == "relayed"
    answered = tenderer.call("POST", f"/objections/{oid}/answer", {"answer": "经复核，维持原评审结果"})
    assert answered["status"] == "answered" and [a["by"] for a in answered["answers"]] == [
        SUPERVISOR.principal_id, TENDERER.principal_id]
    tenderer.refused("POST", f"/objections/{oid}/answer", {"answer": "again"}, 409, "already answered")
    bidder.refused("POST", f"/objections/{oid}/withdraw", {}, 409, "is answered")
    record = st.admin.get(f"/v1/records/{answered['leaves'][-1]}")["entry"]["record"]
    assert record["payload"]["answered_by"] == TENDERER.principal_id

    report = _verify(st, tmp_path)
    assert report.verdict is Verdict.VERIFIED, [s for s in report.sessions if not s.ok]
    finding = _finding(report, f"objection {oid}")
    assert finding.ok and f"answered by {SUPERVISOR.principal_id}, {TENDERER.principal_id}" in finding.detail


def test_an_objection_not_relayed_by_its_deadline_alarms_and_verify_says_so(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    late = st.call("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "质疑",
                                                        "relay_deadline": _soon(1)}, 201)
    kept = st.call("POST", "/sessions/S-1/objections", {"filed_by": "另一投标人", "summary": "质疑",
                                                        "relay_deadline": _soon(3600)}, 201)
    st.venue(MAIN).call("POST", f"/objections/{kept['objection_id']}/relay",
                        {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]})
    wait_until(lambda: any(a["kind"] == "objection_relay_overdue" for a in st.call("GET", "/alarms")), 15,
               "the relay alarm")
    alarms = [a for a in st.call("GET", "/alarms") if a["kind"] == "objection_relay_overdue"]
    assert [a["objection_id"] for a in alarms] == [late["objection_id"]]
    alarm = st.admin.get(f"/v1/records/{alarms[0]['leaf_index']}")["entry"]["record"]
    assert alarm["payload"]["alarm"] == "relay_overdue"

    # The miss is proven by the evidence (its alarm is in the log): a fact the report states, not a forgery.
    report = _verify(st, tmp_path)
    assert report.verdict is Verdict.VERIFIED
    missed = _finding(report, f"objection {late['objection_id']}")
    assert missed.ok and "not relayed by its deadline" in missed.detail
    assert f"alarm raised at leaf {alarms[0]['leaf_index']}" in missed.detail
    assert "by its deadline" not in _finding(report, f"objection {kept['objection_id']}").detail


def test_an_answer_without_its_objection_fails_verify(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    # The hub's own key writes an answer to an objection the log never saw filed.
    record = {"type": "objection", "project_id": PROJECT, "session_id": "S-1", "venue_id": MAIN,
              "device_id": st.hub.key.submitter_id, "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "payload": {"objection_id": "O-77", "status": "answered", "filed_by_commitment": "c1:" + "ab" * 32,
                          "summary": "质疑", "answer": "维持原结果", "answered_by": TENDERER.principal_id}}
    st.hub.notary.submit(st.hub.key, [record])
    report = _verify(st, tmp_path)
    finding = _finding(report, "objection O-77")
    assert not finding.ok and "not its filing" in finding.detail and "before any relay" in finding.detail
    assert report.verdict is Verdict.FAILED


def test_a_complaint_is_accepted_and_decided_by_the_supervisor_addressed(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    bidder, supervisor = st.as_key(BIDDER), st.as_key(SUPERVISOR)
    o = bidder.call("POST", "/sessions/S-1/objections", {"summary": "评分有误"}, 201)
    theirs = st.call("POST", "/sessions/S-1/objections", {"filed_by": "他人", "summary": "质疑"}, 201)
    bidder.refused("POST", "/sessions/S-1/complaints", {"supervisor_id": TENDERER.principal_id, "summary": "投诉"},
                   422, "is not a supervisor")
    bidder.refused("POST", "/sessions/S-1/complaints", {"supervisor_id": SUPERVISOR.principal_id, "summary": "投诉",
                                                        "objection_id": theirs["objection_id"]}, 422, "is not one")
    st.refused("POST", "/sessions/S-1/complaints", {"supervisor_id": SUPERVISOR.principal_id, "summary": "投诉"},
               403, "may not file complaint")
    c = bidder.call("POST", "/sessions/S-1/complaints", {"supervisor_id": SUPERVISOR.principal_id,
                                                         "summary": "异议答复不当，向监督部门投诉",
                                                         "objection_id": o["objection_id"]}, 201)
    cid = c["complaint_id"]
    desk = SupervisorDesk(st)
    try:
        st.as_key(desk.key).refused("POST", f"/complaints/{cid}/accept", {}, 403, f"only {SUPERVISOR.principal_id}")
        st.as_key(desk.key).refused("GET", f"/complaints/{cid}", None, 403, "is between")
    finally:
        desk.close()
    supervisor.refused("POST", f"/complaints/{cid}/decide", {"text": "驳回"}, 409, "is filed")
    accepted = supervisor.call("POST", f"/complaints/{cid}/accept", {})
    assert accepted["status"] == "accepted" and accepted["decision_deadline"]
    supervisor.refused("POST", f"/complaints/{cid}/decide", {}, 422, "give the decision")
    decided = supervisor.call("POST", f"/complaints/{cid}/decide", {"text": "投诉缺乏事实根据，驳回投诉"})
    assert decided["status"] == "decided" and bidder.call("GET", f"/complaints/{cid}")["decision"]

    report = _verify(st, tmp_path)
    finding = _finding(report, f"complaint {cid}")
    assert finding.ok and "decided" in finding.detail and SUPERVISOR.principal_id in finding.detail


def test_a_complaint_left_unanswered_alarms_and_verify_says_so(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    st.hub.config.complaint_accept_hours = 1 / 3600  # a second, so the test need not wait three days
    c = st.as_key(BIDDER).call("POST", "/sessions/S-1/complaints",
                               {"supervisor_id": SUPERVISOR.principal_id, "summary": "投诉"}, 201)
    wait_until(lambda: any(a["kind"] == "complaint_acceptance_overdue" for a in st.call("GET", "/alarms")), 15,
               "the acceptance alarm")
    report = _verify(st, tmp_path)
    finding = _finding(report, f"complaint {c['complaint_id']}")
    assert finding.ok and "not accepted or rejected by its deadline" in finding.detail
    assert "alarm raised at leaf" in finding.detail


def _case(st: Stack, session: str, code: str, evidence: list[int]) -> dict[str, Any]:
    case: dict[str, Any] = st.call("POST", "/misconduct", {
        "session_id": session, "subject_kind": "bidder", "subject_id": code, "subject_name": "青岛海建有限公司",
        "description": "投标文件雷同，疑似围标串标", "evidence": evidence}, 201)
    return case


def test_misconduct_of_one_party_links_across_projects_and_forwards_with_a_receipt(
        stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    setup_session(st, "S-2", OTHER_PROJECT, slot=("2026-11-27T09:30:00+08:00", "2026-11-27T17:30:00+08:00"))
    evidence = st.call("GET", "/sessions/S-1/timeline")[0]["leaf_index"]
    other_evidence = st.call("GET", "/sessions/S-2/timeline")[0]["leaf_index"]
    first = _case(st, "S-1", CODE, [evidence])
    second = _case(st, "S-2", " " + CODE.lower() + " ", [other_evidence])  # the same code, written loosely
    stranger = _case(st, "S-2", "91370000MA3C5XXXX1", [other_evidence])
    st.refused("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder", "subject_id": "not-a-code",
                                       "subject_name": "某公司", "description": "d"}, 422, "unified social credit code")
    assert first["linkage"] == second["linkage"] != stranger["linkage"]
    assert first["linkage_key"] == "k1"
    leaf = st.admin.get(f"/v1/records/{first['leaves'][0]}")["entry"]["record"]
    assert CODE not in json.dumps(leaf)
    assert leaf["payload"]["subject_commitment"] != leaf["payload"]["linkage_commitment"] == first["linkage"]
    # The linkage is keyed: the hub's registry key (k1, in its own 0600 file) makes it; another key does not.
    keys = LinkageKeys.load_or_create(st.hub.config.registry_key_file)
    assert commit(linkage_salt(keys.keys["k1"], "organisation", CODE), CODE) == first["linkage"]
    assert commit(linkage_salt(bytes(32), "organisation", CODE), CODE) != first["linkage"]

    # Authorised users link them, by the code or from a case; the public and the parties may not.
    found = st.call("POST", "/misconduct/registry", {"subject_kind": "bidder", "subject_id": CODE})
    assert [c["case_id"] for c in found] == [first["case_id"], second["case_id"]]
    assert [c["case_id"] for c in st.as_key(SUPERVISOR).call("GET", f"/misconduct/{stranger['case_id']}/linked")] == [
        stranger["case_id"]]
    st.as_key(BIDDER).refused("POST", "/misconduct/registry", {"subject_kind": "bidder", "subject_id": CODE}, 403,
                              "may not read cases")
    access = [r["entry"]["record"] for r in st.admin.get("/v1/records", limit=1000)["records"]
              if r["entry"]["record"]["type"] == "access"]
    assert {(a["project_id"], a["payload"]["action"]) for a in access} >= {
        (PROJECT, "search_misconduct_registry"), (OTHER_PROJECT, "search_misconduct_registry")}

    # The public sees published cases only, with no code.
    for step in ("verify", "publish"):
        st.call("POST", f"/misconduct/{first['case_id']}/{step}", {})
    public = st.api.get("/public/misconduct", headers={"Authorization": ""})
    assert [c["case_id"] for c in public.json()] == [first["case_id"]] and CODE not in public.text

    # Forwarding: only a registered endpoint; a receipt that does not acknowledge the document changes nothing.
    st.refused("POST", f"/misconduct/{first['case_id']}/forward", {"supervisor": SUPERVISOR.principal_id}, 422,
               "has no registered endpoint")
    liar = SupervisorDesk(st, "supervisor-liar", honest=False)
    try:
        st.refused("POST", f"/misconduct/{first['case_id']}/forward", {"supervisor": liar.principal_id}, 502,
                   "does not hold", "stays published")
    finally:
        liar.close()
    desk = SupervisorDesk(st)
    try:
        st.refused("POST", f"/misconduct/{first['case_id']}/forward",
                   {"supervisor": desk.principal_id, "endpoint": "http://127.0.0.1:9/elsewhere"}, 403,
                   "is not an endpoint registered")
        forwarded = st.call("POST", f"/misconduct/{first['case_id']}/forward", {"supervisor": desk.principal_id})
    finally:
        desk.close()
    assert forwarded["status"] == "forwarded" and forwarded["delivery"]["receipt_id"] == "R-1"
    assert forwarded["delivery"]["document_sha256"] == hashlib.sha256(desk.documents[-1]).hexdigest()
    delivered = json.loads(desk.documents[-1])
    assert delivered["case_id"] == first["case_id"] and [r["leaf_index"] for r in delivered["records"]] == \
        first["leaves"] + forwarded["leaves"][1:3]

    # The court's extract opens the linkage: it names the same party as the subject, and verify recomputes
    # the document the receipt acknowledges.
    report = _verify(st, tmp_path, disclose=True)
    assert report.verdict is Verdict.VERIFIED, [s for s in report.sessions if not s.ok]
    finding = _finding(report, f"misconduct case {first['case_id']}")
    assert "linkage opened and consistent" in finding.detail and "receipt R-1" in finding.detail
    plain = _finding(_verify(st, tmp_path), f"misconduct case {first['case_id']}")
    assert plain.ok and "linkage not disclosed" in plain.detail


def test_a_party_under_two_linkages_fails_verify(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)
    evidence = st.call("GET", "/sessions/S-1/timeline")[0]["leaf_index"]
    genuine = _case(st, "S-1", CODE, [evidence])
    # A case of the same party whose linkage was salted afresh, as if no registry key had been used: its
    # cases would never be found together. The notary accepts it (the opening is right); verify does not.
    salt, subject_salt = new_salt(), new_salt()
    record = {"type": "misconduct", "project_id": PROJECT, "session_id": "S-1", "venue_id": MAIN,
              "device_id": st.hub.key.submitter_id, "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "payload": {"case_id": "M-99", "status": "recorded", "subject_kind": "bidder",
                          "subject_commitment": commit(subject_salt, CODE), "linkage_commitment": commit(salt, CODE),
                          "linkage_key": "k1", "description": "同一投标人", "evidence": []}}
    st.hub.notary.submit(st.hub.key, [record], [
        {"index": 0, "field": "linkage_commitment", "salt": salt.hex(), "value": CODE},
        {"index": 0, "field": "subject_commitment", "salt": subject_salt.hex(), "value": CODE}])
    report = _verify(st, tmp_path, disclose=True)
    for case_id in (genuine["case_id"], "M-99"):
        finding = _finding(report, f"misconduct case {case_id}")
        assert not finding.ok and "2 different linkages under key k1" in finding.detail
    assert report.verdict is Verdict.FAILED
