"""POST /v1/records served in front of the framework (notary.api.intake), over real HTTP: the same answers
as the framework's route for every check it makes, and a bounded number of submissions in flight."""

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notary.access import SignedRequests
from notary.client import NotaryClient, SubmitterKey, complete_receipts
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, CONFIGURED, Participants, entry_of, incident, make_config, segment, wait_until
from verifier.canonical import canonical_bytes

INTAKE = "application/json"
# Parsed as JSON by the framework (a +json media type) and left to it by the intake: the route as it was.
FRAMEWORK = "application/bidtrace+json"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Notary, Participants, httpx.Client]]:
    notary = Notary(make_config(tmp_path / "notary", max_in_flight=4))
    people = Participants(notary)
    with serving(notary, start_sealer=False) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield notary, people, http
    notary.close()


def _request(http: httpx.Client, body: dict[str, Any], media: str, key: SubmitterKey | None) -> httpx.Request:
    request = http.build_request("POST", "/v1/records", content=json.dumps(body).encode(),
                                 headers={"content-type": media})
    if key is not None:
        SignedRequests(key).sign(request)
    return request


def _both(http: httpx.Client, body: dict[str, Any], key: SubmitterKey | None) -> tuple[httpx.Response, ...]:
    return tuple(http.send(_request(http, body, media, key)) for media in (INTAKE, FRAMEWORK))


def _signed(key: SubmitterKey, records: list[dict[str, Any]], submitter: str | None = None) -> dict[str, Any]:
    return {"submitter": submitter or key.submitter_id, "records": records, "signature": key.sign_batch(records)}


def test_every_refusal_of_the_route_comes_from_the_intake_alike(served: Any) -> None:
    notary, people, http = served
    elsewhere = {**segment(3), "venue_id": "V-2"}
    broken = segment(4)
    del broken["payload"]["sha256"]
    cases = {
        "unsigned": (_signed(people.camera, [segment(1)]), None, 401, "needs a signed request"),
        "a role that may not submit": (_signed(people.camera, [segment(1)]), ADMIN, 403, "may not submit records"),
        "as another submitter": (_signed(people.camera, [segment(1)]), people.hub, 403, "only as itself"),
        "for another venue": (_signed(people.camera, [elsewhere]), people.camera, 403, "bound to venue V-1"),
        "a batch signature that does not verify": (
            {**_signed(people.camera, [segment(1)]), "signature": people.camera.sign_batch([segment(2)])},
            people.camera, 401, "signature does not verify for V-1.cam1"),
        "a record outside its schema": (_signed(people.camera, [broken]), people.camera, 422,
                                        "payload.sha256: Field required"),
        "a body outside SubmissionIn": ({"submitter": "V-1.cam1", "records": [segment(1)]}, people.camera, 422,
                                        "body.signature: Field required"),
    }
    for what, (body, key, status, needle) in cases.items():
        intake, framework = _both(http, body, key)
        assert (intake.status_code, intake.json()) == (framework.status_code, framework.json()), what
        assert intake.status_code == status and needle in intake.json()["detail"], f"{what}: {intake.text}"
    assert notary.log.size == CONFIGURED  # nothing refused was appended

    notary.principals.revoke("V-1.checkin")
    intake, framework = _both(http, _signed(people.station, [segment(5, device="V-1.checkin")]), people.station)
    assert intake.status_code == framework.status_code == 401
    assert intake.json() == framework.json() and "was revoked" in intake.json()["detail"]


def test_a_replayed_request_is_refused_by_the_intake(served: Any) -> None:
    notary, people, http = served
    request = _request(http, _signed(people.camera, [segment(1)]), INTAKE, people.camera)
    first, again = http.send(request), http.send(request)
    assert first.status_code == 200 and first.json()["appended"] == 1
    assert again.status_code == 401 and "replayed request" in again.json()["detail"]
    assert notary.log.size == CONFIGURED + 1


def test_the_intake_answers_as_the_route_does(served: Any) -> None:
    notary, people, http = served
    client = NotaryClient(str(http.base_url))
    answers = []
    for n, media in enumerate((INTAKE, FRAMEWORK)):
        records = [segment(10 + n), segment(20 + n)]
        response = http.send(_request(http, _signed(people.camera, records), media, people.camera))
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        answers.append(response.json())
        receipts = complete_receipts(response.json()["receipts"])
        client.check_receipts(records, receipts)  # signed by the notary, over these records' bytes
        assert [json.loads(entry_of(notary, r.leaf_index))["record"] for r in receipts] == records
    assert [sorted(a) for a in answers] == [["appended", "duplicates", "receipts"]] * 2
    assert [(a["appended"], a["duplicates"]) for a in answers] == [(2, 0), (2, 0)]
    assert [sorted(r) for r in answers[0]["receipts"]] == [sorted(r) for r in answers[1]["receipts"]]
    client.close()


HELD = [[incident(n)] for n in range(4)]  # the submissions a full worker holds


@contextlib.contextmanager
def _full(notary: Notary, people: Participants, http: httpx.Client) -> Iterator[list[httpx.Response]]:
    """The worker (bound 4) holding the four HELD submissions in flight, their answers when the block ends:
    a writer holding the database keeps the group commit waiting, so the admitted submissions stay in flight."""
    watcher = NotaryClient(str(http.base_url), as_principal=ADMIN)
    blocker = sqlite3.connect(notary.config.data_dir / "notary.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    answers: list[httpx.Response] = []

    def submit(records: list[dict[str, Any]]) -> None:
        answers.append(http.send(_request(http, _signed(people.hub, records), INTAKE, people.hub)))

    threads = [threading.Thread(target=submit, args=(b,)) for b in HELD]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: "bidtrace_submissions_in_flight 4.0" in watcher._http.get("/metrics").text, 10,
                   "four submissions in flight")
        yield answers
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        for t in threads:
            t.join(30)
        watcher.close()


def test_beyond_its_bound_a_worker_answers_503_and_keeps_what_it_acknowledged(served: Any) -> None:
    notary, people, http = served
    beyond = _signed(people.hub, [incident(99)])
    with _full(notary, people, http) as answers:
        refused = http.send(_request(http, beyond, INTAKE, people.hub))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "4 submissions in flight" in refused.json()["detail"]
    assert [a.status_code for a in answers] == [200] * 4
    acknowledged = {json.dumps(json.loads(entry_of(notary, r["leaf_index"]))["record"], sort_keys=True)
                    for a in answers for r in a.json()["receipts"]}
    assert acknowledged == {json.dumps(b[0], sort_keys=True) for b in HELD}
    assert notary.log.size == CONFIGURED + 4  # and nothing of the refused one
    again = http.send(_request(http, beyond, INTAKE, people.hub))  # once the worker has room, it is taken
    assert again.status_code == 200 and canonical_bytes(beyond["records"][0]) in entry_of(
        notary, again.json()["receipts"][0]["leaf_index"])


def test_the_client_waits_out_a_full_worker_and_gets_its_receipts(served: Any) -> None:
    notary, people, http = served
    watcher = NotaryClient(str(http.base_url), as_principal=ADMIN)
    late: list[Any] = []
    client = NotaryClient(str(http.base_url))
    latecomer = threading.Thread(target=lambda: late.append(client.submit(people.hub, [incident(99)])))

    def refusals() -> float:
        text = watcher._http.get("/metrics").text
        line = next((x for x in text.splitlines()
                     if x.startswith("bidtrace_submissions_rejected_total") and '"503"' in x), "")
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    with _full(notary, people, http):
        latecomer.start()
        wait_until(lambda: refusals() >= 1, 10, "the latecomer answered 503")
    latecomer.join(30)
    assert len(late) == 1 and len(late[0]) == 1  # its receipt, checked by the client
    assert canonical_bytes(incident(99)) in entry_of(notary, late[0][0].leaf_index)
    client.close()
    watcher.close()
