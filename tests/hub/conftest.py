"""A real notary and a real hub, both over HTTP on 127.0.0.1, and the people and devices around them."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from hub.config import HubConfig
from hub.intake import SupervisorIntake
from hub.server import serving_hub
from hub.service import Hub
from notary.access import PrincipalKey, Role, SignedRequests, write_access_config
from notary.client import NotaryClient, SubmitterKey
from notary.extract import published_roots
from notary.server import running_notary
from notary.service import Notary
from tests.conftest import ADMIN, device_bindings, make_config, wait_until
from verifier.commitments import commit, new_salt
from verifier.trust import TrustRoots

PROJECT = "SD-2026-JN-0417"
MAIN, QD, YT = "V-JINAN-01", "V-QINGDAO-02", "V-YANTAI-03"
BIDDERS = [{"name": "山东建工集团", "credit_code": "91370000MA3C5XXXX1"},
           {"name": "青岛海建有限公司", "credit_code": "91370200MA3D6XXXX2"}]


OPERATOR = PrincipalKey.generate("hub-operator-1")
VENUE_KEYS = {v: PrincipalKey.generate(f"{v}-operator") for v in (MAIN, QD, YT)}
SUPERVISOR = PrincipalKey.generate("supervisor-1")
OTHER_PROJECT = "SD-2026-QD-0233"
BIDDER = PrincipalKey.generate("bidder-qdhj")  # 青岛海建有限公司, bidding on both projects
OTHER_BIDDER = PrincipalKey.generate("bidder-other")  # bids on the other project only
TENDERER = PrincipalKey.generate("tenderer-1")  # the tenderer (or its agency) of PROJECT


def hub_access(path: Path) -> Path:
    """The hub's access configuration: the province's operator, one operator per venue, a supervisor, the
    bidders and the tenderer."""
    write_access_config(path, [OPERATOR.principal(Role.HUB_OPERATOR), SUPERVISOR.principal(Role.SUPERVISOR),
                               *(k.principal(Role.VENUE_OPERATOR, v) for v, k in VENUE_KEYS.items()),
                               BIDDER.principal(Role.BIDDER, projects=[PROJECT, OTHER_PROJECT]),
                               OTHER_BIDDER.principal(Role.BIDDER, projects=[OTHER_PROJECT]),
                               TENDERER.principal(Role.TENDERER, projects=[PROJECT])])
    return path


class SupervisorDesk(SupervisorIntake):
    """A supervisor's registered intake endpoint, bound to a new supervisor principal of the running hub;
    a dishonest one acknowledges a document other than the one it received."""

    def __init__(self, st: "Stack", principal_id: str = "supervisor-desk", honest: bool = True) -> None:
        from notary.access import Principal

        super().__init__(SubmitterKey.generate(principal_id))
        self.honest = honest
        self.principal_id = principal_id
        st.hub.principals.bind(Principal(principal_id, Role.SUPERVISOR, self.key.public_pem(),
                                         endpoints=frozenset({self.endpoint})))

    def digest(self, document: bytes) -> str:
        return super().digest(document if self.honest else document + b" ")


@dataclass
class Party:
    """One principal using the hub's API over HTTP, every request signed with its key."""

    api: httpx.Client

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        response = self.api.request(method, path, json=body)
        expected = {status} if status else {200, 201}
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def refused(self, method: str, path: str, body: Any, status: int, *fragments: str) -> str:
        response = self.api.request(method, path, json=body)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        detail = str(response.json()["detail"])
        for fragment in fragments:
            assert fragment in detail, f"{fragment!r} not in {detail!r}"
        return detail


@dataclass
class Stack:
    notary: Notary
    notary_url: str
    hub: Hub
    url: str
    api: httpx.Client
    admin: NotaryClient

    def venue(self, venue_id: str) -> Party:
        """The operator of `venue_id`."""
        return Party(httpx.Client(base_url=self.url, timeout=60, auth=SignedRequests(VENUE_KEYS[venue_id])))

    def as_key(self, key: PrincipalKey) -> Party:
        return Party(httpx.Client(base_url=self.url, timeout=60, auth=SignedRequests(key)))

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        response = self.api.request(method, path, json=body)
        expected = {status} if status else {200, 201}
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def refused(self, method: str, path: str, body: Any, status: int, *fragments: str) -> str:
        response = self.api.request(method, path, json=body)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        detail = str(response.json()["detail"])
        for fragment in fragments:
            assert fragment in detail, f"{fragment!r} not in {detail!r}"
        return detail

    def wait_anchored(self, leaf: int) -> None:
        wait_until(lambda: self.notary.sealer.state.anchored_size > leaf, 20, f"an anchor covering leaf {leaf}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_notary(make_config(tmp_path / "notary", seal_interval=0.2)) as (notary, notary_url):
        hub = Hub(HubConfig(
            data_dir=tmp_path / "hub", notary_url=notary_url, access=hub_access(tmp_path / "hub-access.json"),
            tail_interval=0.1, deliver_interval=0.1, deadline_interval=0.2, inclusion_interval=1.0, retry_base=0.1,
            retry_max=0.4,
            beacon_wait=20))
        admin = NotaryClient(notary_url, as_principal=ADMIN)
        admin.register(hub.key, "hub")
        try:
            with serving_hub(hub) as url, httpx.Client(base_url=url, timeout=60, auth=SignedRequests(OPERATOR)) as api:
                yield Stack(notary, notary_url, hub, url, api, admin)
        finally:
            admin.close()
            hub.close()


def experts(n: int = 40) -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        out.append({"expert_id": f"E-{i:04d}", "name": f"专家{i:02d}", "identity_number": f"3701021970{i:04d}1234",
                    "employer": "山东建工集团" if i == 3 else f"单位{i}", "specialty": "房屋建筑工程", "level": "高级"})
    return out


def identity(expert_id: str) -> str:
    return f"3701021970{int(expert_id[2:]):04d}1234"


def slot_around_now() -> tuple[str, str]:
    """A booked slot that holds what the session's devices record now."""
    now = datetime.now(UTC).replace(microsecond=0)
    return (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=8)).isoformat()


def published(st: Stack) -> TrustRoots:
    """The notary's and its ledger's published roots, as a court would pin them."""
    return published_roots(st.notary.log, st.notary.ledger)


def setup_session(st: Stack, session_id: str = "S-1", project: str = PROJECT, confirm: bool = True,
                  slot: tuple[str, str] = ("2026-11-26T09:30:00+08:00", "2026-11-26T17:30:00+08:00"),
                  ) -> dict[str, str]:
    """Venues, the pool, a session at the main venue, offers to two secondary venues (confirmed)."""
    for venue, city in ((MAIN, "济南"), (QD, "青岛"), (YT, "烟台")):
        st.call("PUT", "/venues", {"venue_id": venue, "name": f"{city}评标中心", "city": city,
                                   "rooms": ["评标室 1", "评标室 2", "评标室 3"]})
    st.call("PUT", "/experts", {"experts": experts()})
    st.call("POST", "/sessions", {"session_id": session_id, "project_id": project, "main_venue_id": MAIN,
                                  "room": "评标室 3", "slot_start": slot[0], "slot_end": slot[1],
                                  "bidders": BIDDERS}, 201)
    bookings = {}
    for venue in (QD, YT):
        b = st.call("POST", f"/sessions/{session_id}/offers", {"venue_id": venue, "room": "评标室 1"}, 201)
        if confirm:
            st.venue(venue).call("POST", f"/bookings/{b['booking_id']}/confirm")
        bookings[venue] = b["booking_id"]
    return bookings


class Station:
    """A card reader at a venue: a registered device writing 'unverified' check-in records (no face compared)
    to the notary, reported to the hub by the operator. The real station, with the face model and its own
    reports to the hub, is exercised in test_face_checkin.py."""

    def __init__(self, st: Stack, venue: str) -> None:
        self.st, self.venue = st, venue
        self.key = SubmitterKey.generate(f"{venue}.checkin")
        st.admin.register(self.key, "device", *device_bindings(self.key.principal_id))

    def check_in(self, session_id: str, expert_id: str, project: str = PROJECT) -> dict[str, Any]:
        salt = new_salt()
        record = {
            "type": "checkin", "project_id": project, "session_id": session_id, "venue_id": self.venue,
            "device_id": self.key.submitter_id, "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "payload": {"expert_commitment": commit(salt, identity(expert_id)), "method": "card",
                        "result": "unverified", "provider": None},
        }
        receipt = self.st.admin.submit(self.key, [record], [{"index": 0, "field": "expert_commitment",
                                                              "salt": salt.hex(), "value": identity(expert_id)}])[0]
        result: dict[str, Any] = self.st.call("POST", f"/sessions/{session_id}/checkins", {
            "expert_id": expert_id, "checkin_leaf": receipt.leaf_index, "salt": salt.hex()}, 201)
        return result


class CA:
    """A small certificate authority of the cloud-sign system, and its experts' certificates."""

    def __init__(self, name: str = "Test Cloud-Sign CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(key: ec.EllipticCurvePrivateKey, document_sha256: str) -> str:
    return key.sign(bytes.fromhex(document_sha256), ec.ECDSA(Prehashed(hashes.SHA256()))).hex()
