"""Submitting evidence through the real HTTP API: keys, roles, signatures, replays, schemas, receipts."""

import json
from typing import Any

import httpx
import pytest

from notary.access import SignedRequests
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.log import Submission
from notary.server import serving
from notary.service import Notary, NotaryConfig
from notary.store import open_engine
from tests.conftest import ADMIN, CONFIGURED, Participants, entry_of, incident, segment
from verifier.canonical import canonical_bytes
from verifier.commitments import commit
from verifier.entry import parse_entry, verify_entry_signature
from verifier.errors import SignatureError
from verifier.merkle import verify_consistency, verify_inclusion
from verifier.note import verify_checkpoint
from verifier.receipt import verify_receipt
from verifier.signatures import load_public_key

PARTICIPANTS: dict[str, SubmitterKey] = {}


@pytest.fixture
def api(notary: Notary) -> Any:
    people = Participants(notary)
    PARTICIPANTS.clear()
    PARTICIPANTS.update(people.keys)
    with serving(notary, start_sealer=False) as url:
        client = NotaryClient(url, as_principal=ADMIN)
        yield notary, client, people
        client.close()


def _raw_post(client: NotaryClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    key = PARTICIPANTS.get(str(body.get("submitter")))
    auth = SignedRequests(key) if key else httpx.USE_CLIENT_DEFAULT
    response = client._http.post("/v1/records", json=body, auth=auth)
    return response.status_code, response.json()


def test_batch_signed_once_proves_each_records_submitter_on_its_own(api: Any) -> None:
    notary, client, people = api
    records = [segment(i) for i in range(37)]
    receipts = client.submit(people.camera, records)
    assert [r.leaf_index for r in receipts] == list(range(CONFIGURED, CONFIGURED + 37))
    key = load_public_key(people.camera.public_pem())
    for i in (0, 17, 36):
        entry = parse_entry(entry_of(notary, CONFIGURED + i))
        assert entry.record == records[i] and entry.submitter == "V-1.cam1"
        verify_entry_signature(entry, key)  # this record alone, with its path, proves its submitter
        other = load_public_key(people.hub.public_pem())
        with pytest.raises(SignatureError):
            verify_entry_signature(entry, other)


def test_receipts_are_signed_by_the_notary_and_match_the_leaves(api: Any) -> None:
    notary, client, people = api
    receipts = client.submit(people.hub, [incident(i) for i in range(5)])
    for r in receipts:
        r.verify(notary.key.note_key, "province")
        assert r.record_hash == parse_entry(entry_of(notary, r.leaf_index)).record_hash
    forged = dict(receipts[0].encode(), leaf_index=3, leaf_hash=receipts[3].leaf_hash.hex())
    with pytest.raises(SignatureError):
        verify_receipt(forged, notary.key.note_key, "province")


def test_resubmitted_record_gets_the_same_receipt_and_no_second_leaf(api: Any) -> None:
    notary, client, people = api
    first = client.submit(people.hub, [incident(1), incident(2)])
    again = client.submit(people.hub, [incident(2), incident(3), incident(1), incident(3)])
    assert again[0] == first[1] and again[2] == first[0]
    assert again[1] == again[3] and again[1].leaf_index == CONFIGURED + 2
    assert notary.log.size == CONFIGURED + 3
    response = client._http.post("/v1/records", auth=SignedRequests(people.hub), json={
        "submitter": "hub-1", "records": [incident(1)], "signature": people.hub.sign_batch([incident(1)])})
    assert response.json()["appended"] == 0 and response.json()["duplicates"] == 1


def test_unknown_submitter_is_refused_by_name(api: Any) -> None:
    _, client, _ = api
    stranger = SubmitterKey.generate("V-9.cam7")
    with pytest.raises(NotaryError) as err:
        client.submit(stranger, [segment(1, device="V-9.cam7")])
    assert err.value.status == 401 and "V-9.cam7" in err.value.detail and "not registered" in err.value.detail


def test_revoked_key_is_refused_with_when(api: Any) -> None:
    notary, client, people = api
    client.submit(people.camera, [segment(1)])
    revoked = client._http.post("/v1/submitters/V-1.cam1/revoke").json()
    with pytest.raises(NotaryError) as err:
        client.submit(people.camera, [segment(2)])
    assert revoked["revoked_at"]
    assert err.value.status == 401 and "V-1.cam1" in err.value.detail and "revoked" in err.value.detail
    assert notary.log.size == CONFIGURED + 2  # the segment, and the registry record of the revocation
    assert json.loads(entry_of(notary, CONFIGURED + 1))["record"]["payload"]["action"] == "principal_revoked"


def test_device_may_not_submit_another_role_s_records_or_for_another_device(api: Any) -> None:
    notary, client, people = api
    draw = {**incident(1, device="V-1.cam1"), "type": "fee_payment",
            "payload": {"payment_id": "F-1", "payee_commitment": "c1:" + "0" * 64, "payer": "x", "amount_fen": 1,
                        "reference": "r"}}
    with pytest.raises(NotaryError) as err:
        client.submit(people.camera, [draw])
    assert err.value.status == 403 and "not 'fee_payment'" in err.value.detail
    with pytest.raises(NotaryError) as err:
        client.submit(people.camera, [segment(1, device="V-1.checkin")])
    assert err.value.status == 403 and "for device V-1.checkin" in err.value.detail
    assert notary.log.size == CONFIGURED


def test_bad_signature_is_refused_and_nothing_is_written(api: Any) -> None:
    notary, client, people = api
    records = [segment(1), segment(2)]
    status, body = _raw_post(client, {"submitter": "V-1.cam1", "records": records,
                                      "signature": people.camera.sign_batch(records[::-1])})
    assert status == 401 and "signature does not verify for V-1.cam1" in body["detail"]
    status, body = _raw_post(client, {"submitter": "V-1.cam1", "records": records, "signature": "%%%"})
    assert status == 400 and "base64" in body["detail"]
    assert notary.log.size == CONFIGURED


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda r: r["payload"].update(expert_name="张三"), "payload.expert_name: Extra inputs are not permitted"),
    (lambda r: r.update(occurred_at="2026-11-26 10:00"), "occurred_at"),
    (lambda r: r.update(type="selfie"), "type"),
    (lambda r: r["payload"].pop("sha256"), "payload.sha256: Field required"),
    (lambda r: r["payload"].update(frame_count=-1), "payload.frame_count"),
    (lambda r: r.update(project_id=""), "project_id"),
])
def test_schema_violations_name_the_field(api: Any, mutate: Any, needle: str) -> None:
    notary, client, people = api
    good, bad = segment(1), segment(2)
    mutate(bad)
    with pytest.raises(NotaryError) as err:
        client.submit(people.camera, [good, bad])
    assert err.value.status == 422 and "record 1" in err.value.detail and needle in err.value.detail
    assert notary.log.size == CONFIGURED  # a batch is all or nothing


def test_personal_data_enters_only_as_a_commitment_and_disclosures_must_open_it(api: Any) -> None:
    notary, client, people = api
    salt = bytes(range(32))
    checkin = {**segment(0, device="V-1.checkin"), "type": "checkin", "payload": {
        "expert_commitment": commit(salt, "370102197001011234"), "method": "face", "result": "unverified",
        "provider": None, "photo_sha256": "ab" * 32, "faces_detected": 1}}
    wrong = [{"index": 0, "field": "expert_commitment", "salt": salt.hex(), "value": "370102197001019999"}]
    with pytest.raises(NotaryError) as err:
        client.submit(people.station, [checkin], wrong)
    assert err.value.status == 422 and "does not open its commitment" in err.value.detail
    right = [{"index": 0, "field": "expert_commitment", "salt": salt.hex(), "value": "370102197001011234"}]
    receipt = client.submit(people.station, [checkin], right)[0]
    assert b"370102197001011234" not in entry_of(notary, receipt.leaf_index)
    assert notary.log.disclosures(receipt.leaf_index)[0]["value"] == "370102197001011234"


def test_acknowledged_records_are_in_the_database_when_the_answer_arrives(api: Any) -> None:
    notary, client, people = api
    receipts = client.submit(people.hub, [incident(i) for i in range(20)])
    fresh = open_engine(notary.config.url)  # another connection sees the committed rows
    with fresh.connect() as conn:
        from sqlalchemy import text
        assert conn.execute(text("SELECT count(*) FROM leaves")).scalar() == CONFIGURED + 20
    fresh.dispose()
    assert receipts[-1].leaf_index == CONFIGURED + 19


def test_proofs_from_the_api_verify_against_the_signed_checkpoint(api: Any) -> None:
    notary, client, people = api
    client.submit(people.camera, [segment(i) for i in range(11)])
    first = client.get("/v1/checkpoint")
    client.submit(people.camera, [segment(i) for i in range(11, 30)])
    notary.log.sign_checkpoint()
    second = client.get("/v1/checkpoint")
    cp1 = verify_checkpoint(first["note"], notary.key.note_key)
    cp2 = verify_checkpoint(second["note"], notary.key.note_key)
    first_size, size = CONFIGURED + 11, CONFIGURED + 30
    assert (cp1.size, cp2.size) == (first_size, size)
    for leaf in (0, 10, 29):
        record = client.get(f"/v1/records/{leaf}")
        proof = client.get("/v1/proof/inclusion", leaf_index=leaf, tree_size=size)
        verify_inclusion(bytes.fromhex(record["leaf_hash"]), leaf, size,
                         [bytes.fromhex(h) for h in proof["proof"]], cp2.root)
        assert canonical_bytes(record["entry"]) == entry_of(notary, leaf)
    consistency = client.get("/v1/proof/consistency", first=first_size, second=size)
    verify_consistency(first_size, size, [bytes.fromhex(h) for h in consistency["proof"]], cp1.root, cp2.root)


def test_bad_requests_get_clear_4xx(api: Any) -> None:
    _, client, _ = api
    http = client._http
    assert http.get("/v1/records/99").status_code == 404
    beyond = http.get("/v1/proof/inclusion", params={"leaf_index": 0, "tree_size": 5})
    assert beyond.status_code == 404 and f"tree_size <= {CONFIGURED}" in beyond.json()["detail"]
    assert http.get("/v1/proof/consistency", params={"first": 3, "second": 2}).status_code == 404
    broken = http.post("/v1/records", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    empty = http.post("/v1/records", json={"submitter": "hub-1", "records": [], "signature": ""},
                      auth=SignedRequests(PARTICIPANTS["hub-1"]))
    assert empty.status_code == 422
    assert httpx.post(str(http.base_url) + "/v1/principals", json={"principal_id": "x", "role": "hub_operator",
                      "public_key": "k" * 40}).status_code == 401


def test_records_page_by_project(api: Any) -> None:
    _, client, people = api
    client.submit(people.hub, [incident(i, project="P-A" if i % 2 else "P-B") for i in range(25)])
    seen, after = [], -1
    while after is not None:
        page = client.get("/v1/records", project_id="P-A", after=after, limit=5)
        seen += [r["leaf_index"] for r in page["records"] if r["entry"]["record"]["type"] != "access"]
        after = page["next_after"]
    assert seen == [CONFIGURED + i for i in range(25) if i % 2]
    assert all(r["entry"]["project_seq"] == k for k, r in enumerate(
        client.get("/v1/records", project_id="P-A", limit=100)["records"]))


def test_health_and_metrics(api: Any) -> None:
    _, client, people = api
    client.submit(people.hub, [incident(1)])
    health = client.get("/healthz")
    assert health["status"] == "ok" and health["size"] == CONFIGURED + 1
    metrics = client._http.get("/metrics").text
    assert "bidtrace_records_appended_total 1.0" in metrics and f"bidtrace_log_size {CONFIGURED + 1}.0" in metrics


def test_the_log_reopens_where_it_stopped(tmp_path: Any, database_url: str) -> None:
    config = NotaryConfig(data_dir=tmp_path / "n", database_url=database_url)
    first = Notary(config)
    hub = SubmitterKey.generate("hub-1")
    first.log.register_submitter("hub-1", "hub", hub.public_pem())
    batch = [incident(i) for i in range(9)]
    first.log.submit(Submission("hub-1", batch, hub.sign_batch(batch)))
    root = first.log.root()
    first.close()
    second = Notary(config)
    assert second.log.size == 9 and second.log.root() == root
    batch = [incident(i, project="P-1") for i in range(9, 12)]
    result = second.log.submit(Submission("hub-1", batch, hub.sign_batch(batch)))
    assert [json.loads(entry_of(second, r.leaf_index))["project_seq"] for r in result.receipts] == [9, 10, 11]
    assert len(result.receipts[0].signature) == 64
    second.close()


def test_disclosed_values_round_trip_exactly(api: Any) -> None:
    notary, client, people = api
    salt = bytes(range(32, 64))
    value = "张三\tline\nbreak \\ back\\slash\r\\N end"
    checkin = {**segment(0, device="V-1.checkin"), "type": "checkin", "payload": {
        "expert_commitment": commit(salt, value), "method": "card", "result": "matched", "provider": "demo",
        "photo_sha256": None, "faces_detected": None}}
    receipt = client.submit(people.station, [checkin],
                            [{"index": 0, "field": "expert_commitment", "salt": salt.hex(), "value": value}])[0]
    assert notary.log.disclosures(receipt.leaf_index) == [
        {"field": "expert_commitment", "salt": salt.hex(), "value": value}]
