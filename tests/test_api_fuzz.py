"""Property-based fuzzing of the whole published API (schemathesis against /openapi.json): no 5xx, ever,
whether the request is anonymous or signed by a principal allowed to make it."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from notary.access import SignedRequests
from notary.client import NotaryClient, SubmitterKey
from notary.log import Submission
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, Participants, incident, make_config, segment, send_signed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    notary = Notary(make_config(tmp_path_factory.mktemp("fuzz") / "notary", seal_interval=0.2))
    people = Participants(notary)
    FUZZ_KEYS.update(people.keys)
    batch = [segment(i) for i in range(20)]
    notary.log.submit(Submission("V-1.cam1", batch, people.camera.sign_batch(batch)))
    notary.log.submit(Submission("hub-1", [incident(1)], people.hub.sign_batch([incident(1)])))
    with serving(notary) as url:
        deadline = time.monotonic() + 20
        while notary.sealer.state.anchored_size < 21 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield url
    notary.close()


schema = schemathesis.pytest.from_fixture("api_schema")
FUZZ_KEYS: dict[str, SubmitterKey] = {}


@pytest.fixture(scope="module")
def api_schema(served: str) -> schemathesis.BaseSchema:
    # The document under test is the one the live server publishes.
    loaded = schemathesis.openapi.from_url(served + "/openapi.json")
    return loaded


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_notary_fail(case: schemathesis.Case, served: str) -> None:  # type: ignore[type-arg]
    where = f"{case.method} {case.formatted_path}"
    anonymous = case.call(timeout=30)
    assert anonymous.status_code < 500, f"{where}: {anonymous.status_code} {anonymous.text[:300]}"
    # Signed by who may make it: the hub submits, the administrator does the rest.
    key = FUZZ_KEYS["hub-1"] if (case.method, case.path) == ("POST", "/v1/records") else ADMIN
    signed = send_signed(case, served, key)
    assert signed.status_code < 500, f"{where} signed: {signed.status_code} {signed.text[:300]}"
    assert signed.status_code != 401 or "does not verify" not in signed.text, f"{where}: {signed.text[:300]}"


def test_openapi_document_names_the_interfaces(served: str) -> None:
    doc = httpx.get(served + "/openapi.json").json()
    for path in ["/v1/records", "/v1/records/{leaf_index}", "/v1/checkpoint", "/v1/proof/inclusion",
                 "/v1/proof/consistency", "/v1/anchors", "/healthz", "/metrics"]:
        assert path in doc["paths"], path
    client = NotaryClient(served)
    assert client.get("/v1/log")["size"] >= 21  # and the access records of the fuzzing's signed reads
    client.close()


def test_extract_path_needs_a_signed_request_of_an_allowed_role(served: str, tmp_path: Path) -> None:
    assert httpx.get(served + "/v1/projects/P-1/extract").status_code == 401
    impostor = SignedRequests(SubmitterKey.generate(ADMIN.principal_id))
    forged = httpx.get(served + "/v1/projects/P-1/extract", auth=impostor)
    assert forged.status_code == 401 and "does not verify" in forged.json()["detail"]
    ok = httpx.get(served + "/v1/projects/P-1/extract", auth=SignedRequests(ADMIN))
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/zip"
