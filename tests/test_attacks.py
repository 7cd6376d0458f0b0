"""Attacks on the notary over real HTTP: impersonation, forged and replayed signatures, anonymous reads,
hostile bodies, personal data in free text. Each is refused with the right 4xx, names what was wrong, and
appends nothing."""

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notary.access import AccessConfigError, Principal, PrincipalKey, Role, SignedRequests, write_access_config
from notary.api import create_app
from notary.client import NotaryClient, SubmitterKey
from notary.server import serving
from notary.service import Notary, NotaryConfig
from tests.conftest import ADMIN, Participants, incident, make_config, segment, wait_until

PII = {
    "resident identity number": "身份证 110101199003077777",
    "mobile phone number": "联系 138 0013 8000",
    "landline phone number": "电话０５３１－８８８８８８８８",
    "unified social credit code": "代码 91370000MA3C5XXXX1",
}


class Served:
    def __init__(self, notary: Notary, url: str, people: Participants) -> None:
        self.notary, self.url, self.people = notary, url, people
        self.court = SubmitterKey.generate("court-1")
        self.supervisor = SubmitterKey.generate("supervisor-1")
        for key, role, projects in ((self.court, Role.COURT, ["P-1"]), (self.supervisor, Role.SUPERVISOR, [])):
            notary.principals.bind(key.principal(role, projects=projects))

    def post(self, key: PrincipalKey | None, body: Any, path: str = "/v1/records", **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, auth=SignedRequests(key) if key else None, timeout=30, **kw)

    def submission(self, key: SubmitterKey, records: list[dict[str, Any]], submitter: str | None = None) -> Any:
        return {"submitter": submitter or key.submitter_id, "records": records, "signature": key.sign_batch(records)}

    def refused(self, response: httpx.Response, status: int, *fragments: str) -> None:
        assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
        detail = response.json()["detail"]
        for fragment in fragments:
            assert fragment in detail, f"{fragment!r} not in {detail!r}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    notary = Notary(make_config(tmp_path / "notary", seal_interval=0.2, max_body_bytes=2 * 1024 * 1024))
    people = Participants(notary)
    with serving(notary) as url:
        yield Served(notary, url, people)
    notary.close()


def test_a_device_cannot_speak_for_another_venue_function_or_device(served: Served) -> None:
    st, camera = served, served.people.camera
    before = st.notary.log.size
    other_venue = segment(1)
    other_venue["venue_id"] = "V-2"
    st.refused(st.post(camera, st.submission(camera, [other_venue])), 403, "bound to venue V-1", "V-2")
    checkin = {**incident(1, device=camera.submitter_id), "type": "checkin",
               "payload": {"expert_commitment": "c1:" + "0" * 64, "method": "card", "result": "unverified"}}
    st.refused(st.post(camera, st.submission(camera, [checkin])), 403, "recorder", "'checkin'")
    # The camera's own key signing a batch that claims the station as submitter
    station = st.people.station
    st.refused(st.post(camera, st.submission(station, [segment(2, device=station.submitter_id)])), 403,
               "only as itself")
    # The hub's key on the request, a device's records in the body
    st.refused(st.post(st.people.hub, st.submission(camera, [segment(3)])), 403, "only as itself")
    assert st.notary.log.size == before


def test_forged_replayed_and_altered_signatures_are_refused(served: Served) -> None:
    st, hub = served, served.people.hub
    before = st.notary.log.size
    impostor = SubmitterKey.generate(hub.submitter_id)  # the hub's name, someone else's key
    st.refused(st.post(impostor, st.submission(hub, [incident(1)])), 401, "does not verify")
    st.refused(st.post(SubmitterKey.generate("nobody"), {}), 401, "'nobody' is not registered")

    request = httpx.Client().build_request("POST", st.url + "/v1/records",
                                           json=st.submission(hub, [incident(2)]))
    SignedRequests(hub).sign(request)
    with httpx.Client(timeout=30) as client:
        assert client.send(request).status_code == 200
        st.refused(client.send(request), 401, "replayed")  # the same signed request again
        altered = httpx.Client().build_request("POST", st.url + "/v1/records",
                                               json=st.submission(hub, [incident(3)]), headers={
                                                   k: v for k, v in request.headers.items()
                                                   if k.lower() in ("signature", "signature-input",
                                                                    "content-digest")})
        st.refused(client.send(altered), 401, "does not verify")  # the signature of another body
        moved = httpx.Client().build_request("GET", st.url + "/v1/records?project_id=P-2")
        SignedRequests(st.court).sign(moved)
        moved.url = httpx.URL(st.url + "/v1/records?project_id=P-1")
        st.refused(client.send(moved), 401, "does not verify")  # the signature of another query
    stale = httpx.Client().build_request("GET", st.url + "/v1/records?project_id=P-1")
    signer = SignedRequests(st.court)
    signer._signer.sign(stale, key_id="court-1", nonce="n" * 24, tag="bidtrace", created=_ago(600),
                        covered_component_ids=("@method", "@authority", "@path", "@query"), body=b"")
    st.refused(httpx.Client().send(stale), 401, "age exceeds")
    no_nonce = httpx.Client().build_request("GET", st.url + "/v1/records?project_id=P-1")
    signer._signer.sign(no_nonce, key_id="court-1", tag="bidtrace",
                        covered_component_ids=("@method", "@authority", "@path", "@query"), body=b"")
    st.refused(httpx.Client().send(no_nonce), 401, "nonce")
    garbage = httpx.get(st.url + "/v1/records", headers={"Signature-Input": "x=(", "Signature": "x=:AA==:"})
    st.refused(garbage, 401, "Signature-Input")
    assert st.notary.log.size == before + 1  # only the one genuine submission


def _ago(seconds: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)


def test_the_public_reads_nothing_that_is_not_public(served: Served) -> None:
    st = served
    NotaryClient(st.url).submit(st.people.hub, [incident(1)])
    before = st.notary.log.size
    for path in ("/v1/records", "/v1/records?project_id=P-1", "/v1/records/0", "/v1/proof/bundle/0",
                 "/v1/projects/P-1/extract", "/v1/projects/P-1/extract?disclose=true", "/v1/principals", "/metrics"):
        response = httpx.get(st.url + path)
        st.refused(response, 401, "signed request")
        assert "link down" not in response.text
    assert httpx.get(st.url + "/v1/checkpoint").status_code == 200  # what a verifier needs stays public
    assert httpx.get(st.url + "/v1/records/0/receipt").status_code == 200
    assert st.notary.log.size == before


def test_courts_read_only_granted_projects_and_disclosures_with_a_purpose(served: Served) -> None:
    st = served
    hub = NotaryClient(st.url)
    hub.submit(st.people.hub, [incident(1, project="P-1"), incident(2, project="P-2")])
    wait_until(lambda: st.notary.sealer.state.anchored_size >= 2, 20, "an anchor")
    court = httpx.Client(base_url=st.url, auth=SignedRequests(st.court), timeout=30)
    st.refused(court.get("/v1/records", params={"project_id": "P-2"}), 403, "not granted project P-2")
    st.refused(court.get("/v1/records"), 403, "granted projects")
    st.refused(court.get("/v1/projects/P-2/extract"), 403, "P-2")
    p2_leaf = next(seq for seq, e in st.notary.log.entries() if json.loads(e)["record"]["project_id"] == "P-2")
    st.refused(court.get(f"/v1/records/{p2_leaf}"), 403, "P-2")
    st.refused(court.get("/v1/projects/P-1/extract", params={"disclose": "true"}), 422, "purpose")
    supervisor = httpx.Client(base_url=st.url, auth=SignedRequests(st.supervisor, purpose="audit"), timeout=30)
    st.refused(supervisor.get("/v1/projects/P-1/extract", params={"disclose": "true"}), 403, "disclosures")

    size = st.notary.log.size
    stated = httpx.Client(base_url=st.url, auth=SignedRequests(st.court, purpose="case 2026-17"), timeout=30)
    assert stated.get("/v1/projects/P-1/extract", params={"disclose": "true"}).status_code == 200
    # The read is itself evidence, in the read project: who, what, why.
    entry = json.loads(st.notary.log.entry(size) or b"{}")["record"]
    assert entry["type"] == "access" and entry["project_id"] == "P-1"
    assert entry["payload"] == {"principal_id": "court-1", "role": "court", "action": "read_extract_disclosed",
                                "resource": "GET /v1/projects/P-1/extract?disclose=true", "purpose": "case 2026-17"}


def test_oversized_bodies_get_413_before_being_read(served: Served) -> None:
    st = served
    before = st.notary.log.size
    limit = st.notary.config.max_body_bytes
    declared = httpx.post(st.url + "/v1/records", content=b"{" + b" " * (limit + 10) + b"}",
                          headers={"content-type": "application/json"})
    st.refused(declared, 413, str(limit))
    assert "    " not in declared.text  # not echoed back

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is cut once it passes the limit
        for _ in range(limit // 65536 + 20):
            yield b" " * 65536

    st.refused(httpx.post(st.url + "/v1/records", content=chunks(), headers={"content-type": "application/json"}),
               413, "exceeds")
    # 50 MB declared on a raw socket: answered at once, without the server waiting for the bytes
    host, port = st.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 52428800\r\n\r\n{")
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 5
    assert st.notary.log.size == before


def test_a_record_over_the_size_bound_is_refused(served: Served) -> None:
    st = served
    before = st.notary.log.size
    pool = [f"E-{i:07d}-{'x' * 100}" for i in range(10_000)]  # ~1.1 MB of valid identifiers
    record = {**incident(1), "type": "draw_commitment",
              "payload": {"draw_id": "D-1", "pool": pool, "pool_digest": "0" * 64,
                          "criteria": {"specialty": "房屋建筑工程"}, "count": 1, "recusal_rules": [],
                          "seed_commitment": "0" * 64}}
    st.refused(st.post(st.people.hub, st.submission(st.people.hub, [record])), 413, "at most 1048576")
    assert st.notary.log.size == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_anywhere_are_422_before_anything_else(served: Served, token: str) -> None:
    st = served
    before = st.notary.log.size
    body = json.dumps(st.submission(st.people.hub, [incident(1)])).replace('"size"', "x")
    body = body.replace('"records": [{', f'"records": [{{"deep": [[{{"n": {token}}}]], ', 1)
    for key in (st.people.hub, None):  # before authentication, too
        response = httpx.post(st.url + "/v1/records", content=body.encode(), timeout=30,
                              headers={"content-type": "application/json"},
                              auth=SignedRequests(key) if key else None)
        st.refused(response, 422, token.lstrip("-"))
    assert st.notary.log.size == before


START = "2026-11-26T10:00:00+08:00"
FREE_TEXT: list[tuple[str, dict[str, Any]]] = [
    ("payload.description", {"type": "incident", "payload": {"incident_id": "I-1", "kind": "other",
                                                              "description": "{}", "started_at": START}}),
    ("payload.summary", {"type": "objection", "payload": {"objection_id": "O-1", "status": "received",
                                                          "filed_by_commitment": "c1:" + "0" * 64, "summary": "{}"}}),
    ("payload.answer", {"type": "objection", "payload": {"objection_id": "O-1", "status": "answered",
                                                         "filed_by_commitment": "c1:" + "0" * 64, "summary": "s",
                                                         "answer": "{}", "answered_by": "tenderer-1"}}),
    ("payload.decision", {"type": "complaint", "payload": {"complaint_id": "C-1", "status": "decided",
                                                           "filed_by_commitment": "c1:" + "0" * 64,
                                                           "supervisor_id": "supervisor-1", "summary": "s",
                                                           "accept_deadline": START, "decision_deadline": START,
                                                           "decision": "{}"}}),
    ("payload.description", {"type": "misconduct", "payload": {"case_id": "M-1", "status": "recorded",
                                                               "subject_kind": "bidder",
                                                               "subject_commitment": "c1:" + "0" * 64,
                                                               "linkage_commitment": "c1:" + "1" * 64,
                                                               "linkage_key": "k1", "evidence": [],
                                                               "description": "{}"}}),
    ("payload.reason", {"type": "booking", "payload": {"booking_id": "B-1", "action": "declined",
                                                       "main_venue_id": "V-1", "venue_id": "V-2", "room": "r",
                                                       "slot_start": "2026-11-26T09:00:00+08:00",
                                                       "slot_end": "2026-11-26T12:00:00+08:00", "reason": "{}"}}),
    ("payload.room", {"type": "booking", "payload": {"booking_id": "B-1", "action": "reserved",
                                                     "main_venue_id": "V-1", "venue_id": "V-1", "room": "{}",
                                                     "slot_start": "2026-11-26T09:00:00+08:00",
                                                     "slot_end": "2026-11-26T12:00:00+08:00"}}),
    ("payload.payer", {"type": "fee_payment", "payload": {"payment_id": "F-1", "payee_commitment": "c1:" + "0" * 64,
                                                          "payer": "{}", "amount_fen": 1, "reference": "r"}}),
    ("payload.reference", {"type": "fee_payment", "payload": {"payment_id": "F-1", "payee_commitment": "c1:" + "0" * 64,
                                                              "payer": "p", "amount_fen": 1, "reference": "{}"}}),
    ("payload.criteria.specialty", {"type": "draw_commitment", "payload": {
        "draw_id": "D-1", "pool": ["E-1"], "pool_digest": "0" * 64, "criteria": {"specialty": "{}"}, "count": 1,
        "recusal_rules": [], "seed_commitment": "0" * 64}}),
    ("payload.recusal_rules.0", {"type": "draw_commitment", "payload": {
        "draw_id": "D-1", "pool": ["E-1"], "pool_digest": "0" * 64, "criteria": {"specialty": "s"}, "count": 1,
        "recusal_rules": ["{}"], "seed_commitment": "0" * 64}}),
    ("attachments.0.name", {"type": "incident", "payload": {"incident_id": "I-1", "kind": "other",
                                                            "description": "d", "started_at": START},
                            "attachments": [{"name": "{}", "sha256": "0" * 64, "size": 1, "media_type": "t"}]}),
]


@pytest.mark.parametrize(("field", "shape"), FREE_TEXT, ids=[f"{s['type']}.{f}" for f, s in FREE_TEXT])
def test_personal_data_in_every_free_text_field_is_422_naming_it(served: Served, field: str,
                                                                  shape: dict[str, Any]) -> None:
    st = served
    before = st.notary.log.size
    for kind, text in PII.items():
        record = json.loads(json.dumps({**incident(1), **shape}).replace('"{}"', json.dumps(text)))
        response = st.post(st.people.hub, st.submission(st.people.hub, [record]))
        st.refused(response, 422, field, kind)
    assert st.notary.log.size == before


def test_typed_criteria_refuse_a_free_form_field(served: Served) -> None:
    st = served
    record = {**incident(1), "type": "draw_commitment", "payload": {
        "draw_id": "D-1", "pool": ["E-1"], "pool_digest": "0" * 64, "count": 1, "recusal_rules": [],
        "seed_commitment": "0" * 64, "criteria": {"specialty": "s", "note": "anything at all"}}}
    st.refused(st.post(st.people.hub, st.submission(st.people.hub, [record])), 422, "criteria.note")


def test_the_notary_refuses_to_start_without_an_access_configuration(tmp_path: Path) -> None:
    notary = Notary(NotaryConfig(data_dir=tmp_path / "n"))
    try:
        with pytest.raises(AccessConfigError, match="no access configuration"):
            create_app(notary)
        for content, reason in ((b"", "empty or too short"), (b"{}  " * 3, "empty or too short"),
                                (b'{"principals": [' + b" " * 30 + b"]}", "names no principal"),
                                (b'{"principals": [{"principal_id": "a", "role": "notary_admin", '
                                 b'"public_key": ""}]}', "public_key is empty"),
                                (b'{"principals": [{"principal_id": "a", "role": "god", "public_key": "x"}]}',
                                 "role must be one of")):
            bad = tmp_path / "access.json"
            bad.write_bytes(content)
            with pytest.raises(AccessConfigError, match=reason):
                Notary(NotaryConfig(data_dir=tmp_path / "m", access=bad)).close()
        venue_less = tmp_path / "venue-less.json"
        write_access_config(venue_less, [ADMIN.principal(Role.DEVICE)])
        with pytest.raises(AccessConfigError, match="bound to one venue"):
            Notary(NotaryConfig(data_dir=tmp_path / "k", access=venue_less)).close()
    finally:
        notary.close()


def test_insecure_local_serves_loopback_callers_and_says_so(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    notary = Notary(NotaryConfig(data_dir=tmp_path / "n", insecure_local=True))
    try:
        with serving(notary, start_sealer=False) as url:
            assert httpx.get(url + "/v1/principals").status_code == 200
        assert "WARNING: --insecure-local" in capfd.readouterr().err
    finally:
        notary.close()


def test_a_database_that_refuses_writes_gets_503_and_degraded_health(served: Served) -> None:
    from sqlalchemy import event

    st = served
    client = NotaryClient(st.url)
    client.submit(st.people.hub, [incident(1)])
    before = st.notary.log.size

    def read_only(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only=ON")

    event.listen(st.notary.engine, "connect", read_only)
    st.notary.engine.dispose()  # every connection from now on refuses writes, as a read-only disk would
    try:
        response = st.post(st.people.hub, st.submission(st.people.hub, [incident(2)]))
        st.refused(response, 503, "refused a write", "readonly", "nothing was appended")
        health = httpx.get(st.url + "/healthz").json()
        assert health["status"] == "degraded" and "refused a write" in health["last_error"]
        # a read that must be recorded is not served when it cannot be
        court = httpx.Client(base_url=st.url, auth=SignedRequests(st.court), timeout=30)
        assert court.get("/v1/records", params={"project_id": "P-1"}).status_code == 503
    finally:
        event.remove(st.notary.engine, "connect", read_only)
        st.notary.engine.dispose()
    assert st.notary.log.size == before
    client.submit(st.people.hub, [incident(2)])
    wait_until(lambda: httpx.get(st.url + "/healthz").json()["status"] == "ok", 20, "health to recover")


def test_a_repeated_key_anywhere_in_a_body_is_422(served: Served) -> None:
    st = served
    before = st.notary.log.size
    body = json.dumps(st.submission(st.people.hub, [incident(1)]))
    twice = body.replace('"kind": "network_failure"', '"kind": "network_failure", "kind": "other"', 1)
    response = httpx.post(st.url + "/v1/records", content=twice.encode(), auth=SignedRequests(st.people.hub),
                          headers={"content-type": "application/json"})
    st.refused(response, 422, "'kind' appears twice")
    assert st.notary.log.size == before


def test_an_extract_shows_who_read_the_project_and_still_verifies(served: Served, tmp_path: Path) -> None:
    from verifier.extract import verify_extract

    st = served
    NotaryClient(st.url).submit(st.people.hub, [incident(1)])
    court = httpx.Client(base_url=st.url, auth=SignedRequests(st.court, purpose="case 2026-17"), timeout=30)
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "an anchor")
    assert court.get("/v1/projects/P-1/extract").status_code == 200  # appends the access record of this read
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "an anchor of the read")
    second = court.get("/v1/projects/P-1/extract")
    assert second.status_code == 200
    path = tmp_path / "extract.zip"
    path.write_bytes(second.content)
    from notary.extract import published_roots

    report = verify_extract(path, published_roots(st.notary.log, st.notary.ledger))
    assert report.ok, (report.verdict, report.errors, [f for f in report.findings if not f.ok],
                       [r for r in report.records if not r.ok][:2])
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = "".join(zf.read(n).decode() for n in zf.namelist() if n.startswith("records/"))
    assert '"type":"access"' in members.replace(" ", "") and "court-1" in members and "case 2026-17" in members


def _registry_records(notary: Notary) -> list[dict[str, Any]]:
    entries = [json.loads(e)["record"] for _, e in notary.log.entries(limit=1000, project_id="registry")]
    return [r["payload"] for r in entries if r["type"] == "registry"]


def test_principals_of_the_access_configuration_are_registry_records_once(tmp_path: Path) -> None:
    operator = SubmitterKey.generate("node-op-1")
    access = tmp_path / "access.json"
    write_access_config(access, [ADMIN.principal(Role.NOTARY_ADMIN), operator.principal(Role.NODE_OPERATOR)])
    config = NotaryConfig(data_dir=tmp_path / "notary", access=access)
    for _ in range(2):  # a restart with the same file binds and records nothing more
        notary = Notary(config)
        bound = {(p["subject"], p["by"], p["role"]) for p in _registry_records(notary)
                 if p["action"] == "principal_bound"}
        assert len(_registry_records(notary)) == 2
        notary.close()
    assert bound == {(ADMIN.submitter_id, "access-configuration", "notary_admin"),
                     ("node-op-1", "access-configuration", "node_operator")}


def test_a_revoked_key_stays_revoked_through_the_api_and_a_restart(tmp_path: Path) -> None:
    operator = SubmitterKey.generate("node-op-1")
    access = tmp_path / "access.json"
    write_access_config(access, [ADMIN.principal(Role.NOTARY_ADMIN), operator.principal(Role.NODE_OPERATOR)])
    config = NotaryConfig(data_dir=tmp_path / "notary", access=access)
    notary = Notary(config)
    with serving(notary, start_sealer=False) as url:
        admin = httpx.Client(base_url=url, auth=SignedRequests(ADMIN), timeout=30)
        assert admin.post("/v1/principals/node-op-1/revoke").status_code == 200
        size = notary.log.size
        again = admin.post("/v1/principals", json=operator.principal(Role.NODE_OPERATOR).to_json())
        assert again.status_code == 409 and "revoked" in again.json()["detail"], again.text
        assert notary.log.size == size
        admin.close()
    notary.close()
    with pytest.raises(AccessConfigError, match=r"node-op-1.*revoked"):
        Notary(config)  # the file still names the revoked key: refused by name, not silently re-bound


@pytest.mark.parametrize("hidden", ["138\u200b0013\u200c8000", "1\u20603\u00ad8\ufeff00138000",
                                    "身份证 1101011990\u200d03077777"])
def test_personal_data_split_by_invisible_characters_is_still_422(served: Served, hidden: str) -> None:
    st = served
    before = st.notary.log.size
    record = {**incident(1), "payload": {**incident(1)["payload"], "description": hidden}}
    st.refused(st.post(st.people.hub, st.submission(st.people.hub, [record])), 422, "payload.description")
    assert st.notary.log.size == before


@pytest.mark.parametrize("principal_id", ["admin-2\n", "ａdmin-2", "admin\u200b-2", "admin-2 "])
def test_a_principal_id_with_a_trailing_newline_or_lookalike_characters_is_refused(served: Served,
                                                                                   principal_id: str) -> None:
    key = SubmitterKey.generate("admin-2")
    body = {**key.principal(Role.NOTARY_ADMIN).to_json(), "principal_id": principal_id}
    with pytest.raises(AccessConfigError, match="principal_id must match"):
        Principal.parse(body, "access configuration")  # as a file names it
    before = served.notary.log.size
    response = served.post(ADMIN, body, "/v1/principals")  # as the API is asked
    assert response.status_code == 422, response.text
    assert served.notary.principals.get(principal_id) is None and served.notary.log.size == before


@pytest.mark.parametrize("key_id", ["x" * 5000, "notary-admin-1\\nX-Injected: 1", "admin\\u00e4"])
def test_a_keyid_that_is_no_principal_id_is_401_without_echoing_it(served: Served, key_id: str) -> None:
    header = f'sig1=("@method");created={int(time.time())};keyid="{key_id}";nonce="{"n" * 20}";tag="bidtrace"'
    response = httpx.get(served.url + "/v1/principals", timeout=30, headers={
        b"Signature-Input": header.encode(), b"Signature": b"sig1=:AAAA:"})
    assert response.status_code == 401, response.text
    assert key_id not in response.text and len(response.text) < 400


def test_a_body_that_trickles_in_gets_408_instead_of_holding_the_connection() -> None:
    from fastapi import FastAPI

    from notary.api.guard import BodyGuard
    from notary.server import serving_app

    app = FastAPI()

    @app.post("/echo")
    async def echo() -> dict[str, str]:
        return {"reached": "yes"}

    app.add_middleware(BodyGuard, max_body_bytes=1024, body_seconds=1.0)
    with serving_app(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"a\": ")  # and then nothing more
            started = time.monotonic()
            answer = conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"did not arrive within 1 seconds" in answer and b"reached" not in answer
        assert time.monotonic() - started < 8


def test_a_422_names_the_field_without_echoing_what_was_sent(served: Served) -> None:
    secret = "370102197001011234-" + "s" * 2000
    response = httpx.get(served.url + "/v1/records", params={"project_id": secret}, timeout=30,
                         auth=SignedRequests(served.court))
    assert response.status_code == 422 and "project_id" in response.json()["detail"], response.text
    assert "370102197001011234" not in response.text and len(response.text) < 400
    response = served.post(ADMIN, {"principal_id": secret, "role": "court"}, "/v1/principals")
    assert response.status_code == 422 and "principal_id" in response.json()["detail"], response.text
    assert "370102197001011234" not in response.text


class Held:
    """Holds a read inside the server at one function until the test lets it go: `entered` is set when the
    read reaches it, and the read goes on once `go` is set (no sleeping: the test acts in between)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        import threading

        self.entered, self.go = threading.Event(), threading.Event()
        real = getattr(module, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            assert self.go.wait(30), "the test never let the read go on"
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, held)

    def during(self, request: Any, act: Any) -> httpx.Response:
        """Send `request` (a callable) from another thread, run `act` while it is held, return its response."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(request)
            assert self.entered.wait(30), "the read never reached the hold"
            act()
            self.go.set()
            response: httpx.Response = future.result(60)
        return response


def _revoke_court(st: Served) -> None:
    admin = httpx.Client(base_url=st.url, auth=SignedRequests(ADMIN), timeout=30)
    assert admin.post(f"/v1/principals/{st.court.submitter_id}/revoke").status_code == 200
    admin.close()


def test_an_extract_read_is_refused_with_nothing_released_if_its_reader_is_revoked_meanwhile(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import notary.api.proofs

    st = served
    NotaryClient(st.url).submit(st.people.hub, [incident(1, project="P-1")])
    wait_until(lambda: st.notary.sealer.state.anchored_size >= st.notary.log.size, 20, "an anchor")
    court = httpx.Client(base_url=st.url, auth=SignedRequests(st.court, purpose="case 2026-17"), timeout=60)
    hold = Held(monkeypatch, notary.api.proofs, "build_extract")  # authorised, recorded, being built
    response = hold.during(lambda: court.get("/v1/projects/P-1/extract", params={"disclose": "true"}),
                           lambda: _revoke_court(st))
    st.refused(response, 401, "revoked while its request was under way", "nothing is served")
    assert not response.content.startswith(b"PK") and "link down" not in response.text
    assert court.get("/v1/projects/P-1/extract").status_code == 401  # and the next request too


def test_a_record_read_is_refused_before_its_access_record_if_its_reader_is_revoked_meanwhile(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import notary.api.records

    st = served
    NotaryClient(st.url).submit(st.people.hub, [incident(1, project="P-1")])
    leaf = st.notary.log.size - 1
    court = httpx.Client(base_url=st.url, auth=SignedRequests(st.court), timeout=60)
    hold = Held(monkeypatch, notary.api.records, "check_project")  # authorised, not yet recorded
    response = hold.during(lambda: court.get(f"/v1/records/{leaf}"), lambda: _revoke_court(st))
    st.refused(response, 401, "revoked while its request was under way")
    assert "link down" not in response.text
    records = [json.loads(e)["record"] for _, e in st.notary.log.entries(after=leaf, limit=100)]
    assert [r["type"] for r in records] == ["registry"], "the revocation is recorded, no access by the revoked"


ID_CARD, CREDIT = "11010519491231002X", "91370000MA3C5X7X2D"  # well-formed: check characters right
FEE = {"payment_id": "F-1", "payee_commitment": "c1:" + "0" * 64, "amount_fen": 1}
DRAW = {"draw_id": "D-1", "pool": ["E-1"], "pool_digest": "0" * 64, "criteria": {"specialty": "s"}, "count": 1,
        "seed_commitment": "0" * 64}
INCIDENT = {"incident_id": "I-1", "kind": "other", "started_at": START}
ATTACHMENT = {"sha256": "0" * 64, "size": 1, "media_type": "application/pdf"}
SPLIT: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, list[str]]] = [
    ("fee_payment", {**FEE, "payer": "质疑 1101051949", "reference": "1231002X 复核"}, [],
     "resident identity number", ["payload.payer", "payload.reference"]),
    ("fee_payment", {**FEE, "payer": "电话 138", "reference": "0013 8000"}, [],
     "mobile phone number", ["payload.payer", "payload.reference"]),
    ("fee_payment", {**FEE, "reference": "0013-8000 转账", "payer": "联系人 138"}, [],  # in either order
     "mobile phone number", ["payload.payer", "payload.reference"]),
    ("draw_commitment", {**DRAW, "recusal_rules": ["0531", "8888 8888"]}, [],
     "landline phone number", ["payload.recusal_rules.0", "payload.recusal_rules.1"]),
    ("draw_commitment", {**DRAW, "recusal_rules": ["110105", "1949", "1231", "002X"]}, [],
     "resident identity number", [f"payload.recusal_rules.{i}" for i in range(4)]),
    ("incident", {**INCIDENT, "description": "代码 9137 0000"}, [{**ATTACHMENT, "name": "MA3C5X7X2D.pdf"}],
     "unified social credit code", ["payload.description", "attachments.0.name"]),
]


@pytest.mark.parametrize(("kind", "payload", "attachments", "what", "fields"), SPLIT,
                         ids=[f"{s[0]}:{'+'.join(s[4])}" for s in SPLIT])
def test_a_number_spread_over_several_fields_is_422_naming_them(served: Served, kind: str, payload: dict[str, Any],
                                                               attachments: list[dict[str, Any]], what: str,
                                                               fields: list[str]) -> None:
    st = served
    before = st.notary.log.size
    record = {**incident(1), "type": kind, "payload": payload, "attachments": attachments}
    response = st.post(st.people.hub, st.submission(st.people.hub, [record]))
    st.refused(response, 422, what, "in pieces", *fields)
    assert ID_CARD not in response.text and "0013" not in response.text  # named, never echoed
    assert st.notary.log.size == before


ORDINARY: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    ("fee_payment", {**FEE, "payer": "第 3 标段评分 87.5", "reference": "2026-11-26 复核后维持 92"}, []),
    ("fee_payment", {**FEE, "payer": "山东省公共资源交易中心 2026", "reference": "2026-0417 第 2 包"}, []),
    ("fee_payment", {**FEE, "payer": "合计 1380", "reference": "0013 号凭证"}, []),
    ("draw_commitment", {**DRAW, "recusal_rules": ["标段 1", "2", "3", "4", "101", "102"]}, []),
    ("draw_commitment", {**DRAW, "recusal_rules": ["2026-11-26", "2026-11-27", "2026-12-01"]}, []),
    ("incident", {**INCIDENT, "description": "停电 10:05 至 10:47"},
     [{**ATTACHMENT, "name": "2026-11-26 现场照片 1.jpg"}, {**ATTACHMENT, "name": "13 号评标室.jpg"}]),
    ("booking", {"booking_id": "B-1", "action": "declined", "main_venue_id": "V-1", "venue_id": "V-2",
                 "room": "评标室 302", "slot_start": "2026-11-26T09:00:00+08:00",
                 "slot_end": "2026-11-26T12:00:00+08:00", "reason": "1500 元场地费未结清，改期至 2026-11-27"}, []),
]


@pytest.mark.parametrize(("kind", "payload", "attachments"), ORDINARY,
                         ids=[f"{o[0]}-{i}" for i, o in enumerate(ORDINARY)])
def test_dates_amounts_and_lot_numbers_in_separate_fields_pass(served: Served, kind: str, payload: dict[str, Any],
                                                                attachments: list[dict[str, Any]]) -> None:
    st = served
    record = {**incident(1), "type": kind, "payload": payload, "attachments": attachments}
    response = st.post(st.people.hub, st.submission(st.people.hub, [record]))
    assert response.status_code == 200, response.text
    assert response.json()["appended"] == 1
