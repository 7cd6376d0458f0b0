"""Receipts bind every field they state, and a client checks over HTTP that the notary kept its promise."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from notary.client import NotaryClient, NotaryError
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, CONFIGURED, Participants, incident, make_config
from verifier.errors import MalformedInput, SignatureError
from verifier.receipt import JSON_SCHEMA, Receipt, verify_receipt


@pytest.fixture
def api(sqlite_notary: Notary) -> Iterator[tuple[Notary, NotaryClient, Participants]]:
    people = Participants(sqlite_notary)
    with serving(sqlite_notary, start_sealer=False) as url:
        client = NotaryClient(url, as_principal=ADMIN)
        yield sqlite_notary, client, people
        client.close()


@pytest.mark.parametrize("field,value", [("record_hash", "ab" * 32), ("received_at", "2020-01-01T00:00:00.000000Z")])
def test_a_receipt_naming_another_record_or_time_is_not_the_notarys(api: Any, field: str, value: str) -> None:
    # The record hash and the time were outside the notary's signature: a receipt for leaf 0 could be shown
    # as the receipt of any record, received at any time.
    notary, client, people = api
    [receipt] = client.submit(people.hub, [incident(1)])
    assert verify_receipt(receipt.encode(), notary.key.note_key, "province") == receipt
    with pytest.raises(SignatureError, match=f"receipt for leaf {CONFIGURED} is not signed by"):
        verify_receipt(dict(receipt.encode(), **{field: value}), notary.key.note_key, "province")


def test_receipt_fields_out_of_range_are_refused(api: Any) -> None:
    notary, client, people = api
    [receipt] = client.submit(people.hub, [incident(1)])
    with pytest.raises(MalformedInput, match="out of range"):
        verify_receipt(dict(receipt.encode(), leaf_index=2**64), notary.key.note_key, "province")


def test_a_client_sees_its_receipt_included_in_a_later_checkpoint(api: Any) -> None:
    notary, client, people = api
    receipts = client.submit(people.hub, [incident(i) for i in range(5)])
    notary.sealer.seal()
    for receipt in receipts:
        assert client.check_included(receipt).size == CONFIGURED + 5
    receipts += client.submit(people.hub, [incident(9)])
    with pytest.raises(NotaryError, match=f"leaf {CONFIGURED + 5} is not yet in a checkpoint"):
        client.check_included(receipts[-1])
    notary.sealer.seal()
    assert client.check_included(receipts[-1]).size == CONFIGURED + 6  # consistent with the one seen before


@pytest.fixture
def twin(tmp_path: Path, sqlite_notary: Notary) -> Iterator[Notary]:
    """A second notary under the same key and log id: what an equivocating notary would show someone else."""
    folder = tmp_path / "twin"
    folder.mkdir()
    shutil.copy(sqlite_notary.config.data_dir / "notary.key", folder / "notary.key")
    other = Notary(make_config(folder))
    assert other.key.note_key == sqlite_notary.key.note_key
    yield other
    other.close()


def test_a_receipt_for_a_leaf_the_log_does_not_hold_is_refused(api: Any, twin: Notary) -> None:
    notary, client, people = api
    client.submit(people.hub, [incident(1)])
    notary.sealer.seal()
    twin_people = Participants(twin)
    with serving(twin, start_sealer=False) as url:
        twin_client = NotaryClient(url, as_principal=ADMIN)
        [receipt] = twin_client.submit(twin_people.hub, [incident(2)])
        twin_client.close()
    receipt.verify(notary.key.note_key, "province")  # the key is the notary's: only the log can tell
    with pytest.raises(NotaryError, match=f"leaf {receipt.leaf_index} of the receipt is not in the notary's"):
        client.check_included(receipt)


def test_a_notary_showing_a_history_inconsistent_with_the_one_seen_before_is_caught(api: Any, twin: Notary) -> None:
    notary, client, people = api
    [first] = client.submit(people.hub, [incident(1)])
    notary.sealer.seal()
    client.check_included(first)
    twin_people = Participants(twin)
    with serving(twin, start_sealer=False) as url:
        # The same notary, later, at the same address, shows a forked history that includes a leaf it
        # receipted there.
        client._http.close()
        client._http = httpx.Client(base_url=url)
        [other] = client.submit(twin_people.hub, [incident(2), incident(3), incident(4)])[-1:]
        twin.sealer.seal()
        with pytest.raises(NotaryError, match="is not consistent with the one of size"):
            client.check_included(other)


def test_the_api_answers_receipts_in_the_formats_one_encoding_and_schema(api: Any) -> None:
    _, client, people = api
    receipts = client.submit(people.hub, [incident(i) for i in range(3)])
    for receipt in receipts:
        served = client.get(f"/v1/records/{receipt.leaf_index}/receipt")
        assert served == receipt.encode() and Receipt.parse(served) == receipt
        jsonschema.validate(served, JSON_SCHEMA)
        jsonschema.validate(receipt.encode(with_path=False), JSON_SCHEMA)  # the form a submission's answer has
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(receipts[0].encode(), note="trust me"), JSON_SCHEMA)
    api_doc = client.get("/openapi.json")
    answer = api_doc["paths"]["/v1/records/{leaf_index}/receipt"]["get"]["responses"]["200"]["content"]
    documented = answer["application/json"]["schema"]
    assert documented["required"] == JSON_SCHEMA["required"] and documented["properties"].keys() == \
        JSON_SCHEMA["properties"].keys() and documented["description"] == JSON_SCHEMA["description"]
    submission = api_doc["components"]["schemas"]["SubmissionOut"]["properties"]["receipts"]["items"]
    assert submission["description"] == JSON_SCHEMA["description"]
    assert not [name for name in api_doc["components"]["schemas"] if "Receipt" in name or "BatchPosition" in name]
