"""A submitter believes no receipt it has not checked: signed by its notary, for the record it sent.

The notary runs for real over HTTP on 127.0.0.1; a relay between client and server alters answers, as a
compromised proxy or a notary that lies would.
"""

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notary.access import Role
from notary.client import NotaryClient, NotaryError, SubmitterKey
from notary.keys import NotaryKey
from notary.server import running_notary
from tests.conftest import ADMIN, CONFIGURED, incident, make_config
from verifier.receipt import Receipt


class Relay(httpx.BaseTransport):
    """Forwards to the real server; `alter` may rewrite the answer to a POST to `path` (by default the receipts
    of a submission's answer)."""

    def __init__(self, alter: Callable[[Any], object], path: str = "/v1/records") -> None:
        self._inner = httpx.HTTPTransport()
        self._alter = alter if path != "/v1/records" else lambda body: alter(body["receipts"])
        self._path = path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        response.read()
        if request.method != "POST" or request.url.path != self._path:
            return response
        body = json.loads(response.content)
        self._alter(body)
        return httpx.Response(response.status_code, json=body)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SubmitterKey]]:
    with running_notary(make_config(tmp_path / "notary")) as (_, url):
        admin = NotaryClient(url, as_principal=ADMIN)
        hub = SubmitterKey.generate("hub-1")
        admin.register(hub, "hub")
        admin.close()
        yield url, hub


def _submit(url: str, hub: SubmitterKey, alter: Callable[[list[dict[str, Any]]], object],
            **kw: Any) -> list[Receipt]:
    client = NotaryClient(url, transport=Relay(alter), **kw)
    try:
        return client.submit(hub, [incident(i) for i in range(3)])
    finally:
        client.close()


def test_genuine_receipts_are_accepted(served: tuple[str, SubmitterKey]) -> None:
    receipts = _submit(*served, lambda r: None)
    first = CONFIGURED + 1  # after the registry records of the administrator's and the hub's bindings
    assert [r.leaf_index for r in receipts] == [first, first + 1, first + 2]
    assert all(isinstance(r, Receipt) for r in receipts)
    assert [len(r.batch_path) for r in receipts] == [2, 2, 1]  # computed from the answer (RFC 9162 tree of 3)


def _flip_signature(receipts: list[dict[str, Any]]) -> None:
    raw = bytearray(base64.b64decode(receipts[1]["signature"]))
    raw[0] ^= 1
    for r in receipts:
        r["signature"] = base64.b64encode(bytes(raw)).decode()


FORGERIES: list[tuple[str, Callable[[list[dict[str, Any]]], object], str]] = [
    ("signature altered", _flip_signature, "is not signed by"),
    ("leaf hash altered", lambda rs: rs[0].update(leaf_hash="00" * 32), "receipt for record"),
    # The record hash is signed (receipt scheme v2): altering it breaks the signature.
    ("record hash altered", lambda rs: rs[2].update(record_hash=rs[0]["record_hash"]), "is not signed by"),
    ("receipt for another record", lambda rs: rs.reverse(), "another record"),
    ("a receipt missing", lambda rs: rs.pop(), "does not carry every leaf hash"),
    ("another log", lambda rs: [r.update(log_id="qingdao") for r in rs], "from log 'qingdao'"),
    ("extra field", lambda rs: rs[0].update(note="trust me"), "exactly the fields"),
]


@pytest.mark.parametrize(("name", "alter", "message"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_a_receipt_that_does_not_hold_is_refused(served: tuple[str, SubmitterKey], name: str,
                                                 alter: Callable[[list[dict[str, Any]]], object], message: str) -> None:
    with pytest.raises(NotaryError) as refused:
        _submit(*served, alter)
    assert refused.value.status == 502 and message in refused.value.detail, refused.value.detail


def test_receipts_signed_by_another_key_than_the_pinned_one_are_refused(served: tuple[str, SubmitterKey]) -> None:
    other = NotaryKey.generate("bidtrace/province")
    with pytest.raises(NotaryError) as refused:
        _submit(*served, lambda r: None, notary_key=other.note_key, log_id="province")
    assert "is not signed by bidtrace/province" in refused.value.detail


def test_a_binding_answers_the_principal_as_bound_and_is_checked(served: tuple[str, SubmitterKey]) -> None:
    url, _ = served
    camera = SubmitterKey.generate("V-1.cam1")
    admin = NotaryClient(url, as_principal=ADMIN)
    bound = admin.register(camera, "device", "V-1", "recorder")
    admin.close()
    assert (bound.principal_id, bound.role, bound.venue_id, bound.function) == ("V-1.cam1", Role.DEVICE, "V-1",
                                                                                "recorder")
    assert bound.public_key == camera.public_pem()
    other = SubmitterKey.generate("V-1.cam2")
    stranger = SubmitterKey.generate("x").public_pem()
    relay = Relay(lambda b: b.update(public_key=stranger), "/v1/principals")
    lied = NotaryClient(url, as_principal=ADMIN, transport=relay)
    with pytest.raises(NotaryError) as refused:
        lied.register(other, "device", "V-1", "recorder")
    lied.close()
    assert refused.value.status == 502 and "not of V-1.cam2 as device with this key" in refused.value.detail
