"""A whole remote evaluation through the hub's HTTP API; its notary extract verifies offline, including the
draw and the replacement draw; a forged draw result is detected; the public disclosure leaks nothing."""

import hashlib
import json
from pathlib import Path

from hub.workflows.draws import RULES
from notary.client import SubmitterKey
from notary.extract import build_extract
from tests.conftest import wait_until
from tests.hub.conftest import (
    CA,
    MAIN,
    PROJECT,
    QD,
    SUPERVISOR,
    TENDERER,
    YT,
    Stack,
    Station,
    SupervisorDesk,
    experts,
    identity,
    published,
    setup_session,
    sign,
)
from verifier.draw import assign, draw, pool_digest
from verifier.extract import verify_extract


def _extract(st: Stack, tmp_path: Path, name: str) -> Path:
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "the log to be anchored")
    path = tmp_path / name
    path.write_bytes(build_extract(st.notary.log, st.notary.ledger, PROJECT, disclose=True))
    return path


def test_full_evaluation_verifies(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st)

    # 主副场专家一次抽取: one committed draw for all three venues, anchored before it runs.
    committed = st.call("POST", "/sessions/S-1/draws", {
        "criteria": {"specialty": "房屋建筑工程", "level": "高级"},
        "venues": [{"venue_id": MAIN, "count": 3}, {"venue_id": QD, "count": 2}, {"venue_id": YT, "count": 2}],
        "conflicts": ["E-0010"]}, 201)
    assert committed["status"] == "committed" and "revealed_seed" not in committed and "selected" not in committed
    d1 = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    assert d1["status"] == "drawn" and len(d1["selected"]) == 7
    assert {"E-0003", "E-0010"} <= set(d1["excluded"])  # same employer as a bidder; listed conflict
    assert not {"E-0003", "E-0010"} & set(d1["selected"])
    anchors = st.admin.get("/v1/anchors", after_size=committed["commitment_leaf"], limit=1)
    assert d1["beacon"] == anchors[0]["root"]  # the first anchor covering the commitment
    assert d1["selected"] == draw([e["expert_id"] for e in experts()], 7, bytes.fromhex(d1["revealed_seed"]),
                                  bytes.fromhex(d1["beacon"]), frozenset(d1["excluded"]))
    assert d1["assignments"] == assign(d1["selected"], [(MAIN, 3), (QD, 2), (YT, 2)])
    st.refused("POST", f"/draws/{committed['draw_id']}/execute", None, 409, "already drawn")

    # Check-ins come from the venues' stations; one expert in Qingdao does not come.
    stations = {v: Station(st, v) for v in (MAIN, QD, YT)}
    absent = d1["assignments"][QD][0]
    for venue, drawn in d1["assignments"].items():
        for expert in drawn:
            if expert != absent:
                assert stations[venue].check_in("S-1", expert)["identity_checked"]

    # 补抽 for the absent expert: committed, anchored, drawn; the earlier experts cannot be drawn again.
    rc = st.call("POST", f"/draws/{committed['draw_id']}/replacements", {"experts": [absent], "reason": "absent"}, 201)
    assert rc["replaces_draw"] == committed["draw_id"] and rc["venues"] == [{"venue_id": QD, "count": 1}]
    d2 = st.call("POST", f"/draws/{rc['draw_id']}/execute")
    (newcomer,) = d2["selected"]
    assert newcomer not in d1["selected"] and d2["assignments"] == {QD: [newcomer]}
    stations[QD].check_in("S-1", newcomer)
    roster = st.call("POST", "/sessions/S-1/roster", None, 201)
    statuses = {e["expert_id"]: e["status"] for e in roster["experts"]}
    assert statuses[absent] == "replaced" and statuses[newcomer] == "present"
    assert sum(1 for s in statuses.values() if s == "present") == 7
    present = [e for e in st.call("GET", "/sessions/S-1/experts") if e["status"] == "selected"]
    assert len(present) == 7

    # Cloud signatures over the evaluation report, verified against a trusted CA; fees.
    ca = CA()
    st.call("POST", "/trusted-cas", {"pem": ca.pem()})
    report = hashlib.sha256(b"evaluation report v1").hexdigest()
    for e in present:
        key, cert = ca.issue(f"专家 {e['expert_id']}")
        st.call("POST", "/sessions/S-1/signatures", {"expert_id": e["expert_id"], "document_sha256": report,
                                                     "certificate_pem": cert, "signature": sign(key, report)}, 201)
        st.call("POST", "/sessions/S-1/fees", {"expert_id": e["expert_id"], "amount_fen": 80_000,
                                               "payer": "山东省公共资源交易中心"}, 201)

    # An incident at a secondary venue, then resolved; it shows in the timeline.
    inc = st.call("POST", "/sessions/S-1/incidents", {"venue_id": YT, "kind": "network_failure",
                                                      "description": "政务外网中断 (link to the main venue down)",
                                                      "started_at": "2026-11-26T10:05:00+08:00"}, 201)
    st.call("POST", f"/incidents/{inc['incident_id']}/resolve", {"ended_at": "2026-11-26T10:12:00+08:00"})
    kinds = [(t["type"], (t["payload"] or {}).get("kind")) for t in st.call("GET", "/sessions/S-1/timeline")]
    assert kinds.count(("incident", "network_failure")) == 2

    # An objection, led by the main venue; misconduct recorded, verified, published, forwarded.
    o = st.call("POST", "/sessions/S-1/objections",
                {"filed_by": "青岛海建有限公司", "summary": "对评分结果提出异议"}, 201)
    st.venue(MAIN).call("POST", f"/objections/{o['objection_id']}/review", {})
    st.venue(MAIN).call("POST", f"/objections/{o['objection_id']}/relay",
                        {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]})
    st.as_key(TENDERER).call("POST", f"/objections/{o['objection_id']}/answer", {"answer": "复核后维持原评审结果"})
    m = st.call("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder",
                                        "subject_id": "91370200MA3D6XXXX2", "subject_name": "青岛海建有限公司",
                                        "description": "投标文件雷同，疑似围标串标",
                                        "evidence": [d1["result_leaf"]]}, 201)
    desk = SupervisorDesk(st)
    try:
        for step, body in (("verify", {}), ("publish", {}), ("forward", {"supervisor": desk.principal_id})):
            st.call("POST", f"/misconduct/{m['case_id']}/{step}", body)
    finally:
        desk.close()

    archived = st.call("POST", "/sessions/S-1/archive", None, 201)
    session_leaves = [r["leaf_index"] for r in st.admin.get("/v1/records", project_id=PROJECT, limit=1000)["records"]
                      if r["entry"]["record"]["session_id"] == "S-1"]
    assert archived["leaves"] == session_leaves[:-1]  # everything of the session before the archive itself
    st.refused("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "other", "description": "late",
                                                   "started_at": "2026-11-26T18:00:00+08:00"}, 409, "archived")

    # The audit extract verifies offline: every record, both draws re-run.
    report_ = verify_extract(_extract(st, tmp_path, "clean.zip"), published(st))
    assert report_.ok, (report_.errors, [s for s in report_.sessions if not s.ok],
                        [r for r in report_.records if not r.ok][:2])
    draws = {s.name: s for s in report_.sessions}
    assert draws[f"draw {committed['draw_id']}"].ok and "7 of 40 re-drawn and identical" in \
        draws[f"draw {committed['draw_id']}"].detail
    assert draws[f"draw {rc['draw_id']}"].ok and f"replaces {absent}" in draws[f"draw {rc['draw_id']}"].detail

    # 信息公开: ids, venues, statuses and digests; no personal data, openings or secrets.
    public = st.api.get(f"/public/projects/{PROJECT}", headers={"Authorization": ""})
    assert public.status_code == 200
    text = public.text
    data = public.json()
    assert data["sessions"][0]["draws"][0]["selected"] == d1["selected"]
    assert data["misconduct"][0]["subject"] == "青岛海建有限公司" and data["misconduct"][0]["evidence"]
    secrets_ = [d1["revealed_seed"], d2["revealed_seed"], "91370200MA3D6XXXX2", "salt"]
    secrets_ += [identity(e["expert_id"]) for e in experts()] + [e["name"] for e in experts()]
    for leaf in range(st.notary.log.size):
        secrets_ += [d["salt"] for d in st.notary.log.disclosures(leaf)]
        secrets_ += [d["value"] for d in st.notary.log.disclosures(leaf) if d["field"] != "filed_by_commitment"]
    leaked = [s for s in secrets_ if s in text]
    assert not leaked, leaked
    assert "青岛海建有限公司" not in json.dumps(data["sessions"], ensure_ascii=False)  # the objector is not named

    # The hub's operator forges a second result of the first draw: the verifier re-runs it and says so.
    forger = SubmitterKey.load_or_create(st.hub.config.data_dir / "hub.key", st.hub.config.hub_id)
    others = [e["expert_id"] for e in experts() if e["expert_id"] not in d1["selected"] + d1["excluded"]]
    forged = [*d1["selected"][:-1], others[0]]
    payload = {k: d1[k] for k in ("draw_id", "commitment_leaf", "beacon", "revealed_seed", "excluded")}
    record = {"type": "draw_result", "project_id": PROJECT, "session_id": "S-1", "venue_id": MAIN,
              "device_id": forger.submitter_id, "occurred_at": "2026-11-26T18:30:00+08:00",
              "payload": {**payload, "selected": forged, "replaces": None,
                          "assignments": assign(forged, [(MAIN, 3), (QD, 2), (YT, 2)])}}
    st.admin.submit(forger, [record])
    tampered = verify_extract(_extract(st, tmp_path, "forged.zip"), published(st))
    bad = [s for s in tampered.sessions if not s.ok]
    # It also comes after the session's archive, which the verifier flags.
    assert not tampered.ok and {s.name for s in bad} <= {f"draw {committed['draw_id']}", f"draw {rc['draw_id']}",
                                                         "archive A-S-1 of session S-1"}
    assert any("logged after its archive" in s.detail for s in bad)
    assert any("committed draw selects" in s.detail for s in bad)
    assert any("another published result" in s.detail for s in bad)
    assert RULES["same_employer"] in json.dumps(st.admin.get(f"/v1/records/{committed['commitment_leaf']}"),
                                                ensure_ascii=False)
    assert pool_digest([e["expert_id"] for e in experts()]) == committed["pool_digest"]
