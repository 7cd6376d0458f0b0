"""The hub's principals over real HTTP: its access file's bindings logged once (not again on restart), binding
and revoking through its API as the README's matrix says (a venue operator only its own venue's devices),
each change a registry record in the log naming who made it, a revocation effective at once and across
restarts."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import HubConfig
from hub.server import serving_hub
from hub.service import CONFIGURATION, Hub
from notary.access import AccessConfigError, PrincipalKey, Role, SignedRequests, key_digest
from notary.client import NotaryClient
from notary.server import running_notary
from notary.service import Notary
from tests.conftest import ADMIN, make_config
from tests.hub.conftest import MAIN, OPERATOR, PROJECT, QD, SUPERVISOR, VENUE_KEYS, hub_access


def configured(hubs: "Hubs") -> list[str]:
    """The principal ids the hub's access file names."""
    from notary.access import load_access_config

    return [p.principal_id for p in load_access_config(hubs.access)]


def registry_records(notary: Notary) -> list[dict[str, Any]]:
    """The registry records the hub wrote, oldest first (the payload, and the submitter that signed it)."""
    out = []
    for _, entry in notary.log.entries(after=-1, limit=1000, project_id="registry"):
        leaf = json.loads(entry)
        if leaf["record"]["type"] == "registry" and leaf["submitter"] == "hub-province":
            out.append({**leaf["record"]["payload"], "signed_by": leaf["submitter"]})
    return out


class Hubs:
    """A notary, and the hub started and restarted on one data folder and one access file."""

    def __init__(self, tmp_path: Path, notary: Notary, notary_url: str) -> None:
        self.tmp_path, self.notary, self.notary_url = tmp_path, notary, notary_url
        self.access = hub_access(tmp_path / "hub-access.json")

    def hub(self) -> Hub:
        return Hub(HubConfig(data_dir=self.tmp_path / "hub", notary_url=self.notary_url, access=self.access))

    @contextmanager
    def serving(self) -> Iterator[tuple[Hub, str]]:
        hub = self.hub()
        try:
            with serving_hub(hub, start_jobs=False) as url:
                yield hub, url
        finally:
            hub.close()

    def register(self) -> None:
        admin = NotaryClient(self.notary_url, as_principal=ADMIN)
        try:
            admin.register(self.hub_key(), "hub")
        finally:
            admin.close()

    def hub_key(self) -> Any:
        from notary.client import SubmitterKey

        return SubmitterKey.load_or_create(self.tmp_path / "hub" / "hub.key", "hub-province")


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[Hubs]:
    with running_notary(make_config(tmp_path / "notary")) as (notary, url):
        (tmp_path / "hub").mkdir(mode=0o700)
        yield Hubs(tmp_path, notary, url)


def call(url: str, key: PrincipalKey | None, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url + path, json=body, timeout=30, auth=SignedRequests(key) if key else None)


def test_the_access_files_principals_are_logged_once_and_not_again_on_restart(hubs: Hubs) -> None:
    hubs.register()
    with hubs.serving() as (_, url):
        records = registry_records(hubs.notary)
        assert sorted(r["subject"] for r in records) == sorted(configured(hubs))
        for r in records:
            assert r["action"] == "principal_bound" and r["by"] == CONFIGURATION and r["signed_by"] == "hub-province"
        by_id = {r["subject"]: r for r in records}
        assert by_id[VENUE_KEYS[QD].principal_id]["venue_id"] == QD
        assert by_id[OPERATOR.principal_id]["digest"] == key_digest(OPERATOR.public_pem())
        assert call(url, OPERATOR, "GET", "/venues").status_code == 200
    size = hubs.notary.log.size
    with hubs.serving() as (_, url):  # a restart with the same file
        assert call(url, OPERATOR, "GET", "/principals").status_code == 200
        assert call(url, VENUE_KEYS[QD], "GET", "/venues").status_code == 200
    assert hubs.notary.log.size == size, "a restart with the same access file logs nothing more"


def test_a_binding_is_not_usable_before_it_is_recorded(hubs: Hubs) -> None:
    with hubs.serving() as (_, url):  # the hub is not yet registered with the notary: it cannot record
        refused = call(url, OPERATOR, "GET", "/venues")
        assert refused.status_code == 503 and "not yet recorded in the log" in refused.json()["detail"]
        assert registry_records(hubs.notary) == []
        hubs.register()
        assert call(url, OPERATOR, "GET", "/venues").status_code == 200  # recorded at its first call now
        assert len(registry_records(hubs.notary)) == len(configured(hubs))


def test_who_may_bind_whom_and_each_change_is_a_record_naming_who(hubs: Hubs) -> None:
    hubs.register()
    court = PrincipalKey.generate("court-jinan")
    qd_station, main_station = PrincipalKey.generate(f"{QD}.checkin"), PrincipalKey.generate(f"{MAIN}.checkin")
    platform = PrincipalKey.generate("supervision-platform")
    with hubs.serving() as (_, url):
        start = len(registry_records(hubs.notary))
        qd = VENUE_KEYS[QD]
        size = hubs.notary.log.size
        # A venue operator binds devices of its own venue only, and nobody else.
        for body, status in (
            ({"principal_id": main_station.principal_id, "role": "device", "public_key": main_station.public_pem(),
              "venue_id": MAIN, "function": "checkin"}, 403),
            ({"principal_id": court.principal_id, "role": "court", "public_key": court.public_pem(),
              "projects": [PROJECT]}, 403),
            ({"principal_id": "x-op", "role": "venue_operator", "public_key": court.public_pem(), "venue_id": QD}, 403),
            ({"principal_id": "x-hub", "role": "hub_operator", "public_key": court.public_pem()}, 403),
        ):
            response = call(url, qd, "POST", "/principals", body)
            assert response.status_code == status, response.text
        assert call(url, SUPERVISOR, "POST", "/principals", {"role": "device"}).status_code == 403
        assert call(url, None, "POST", "/principals", {"role": "device"}).status_code == 401
        assert call(url, qd, "POST", "/principals", {"role": "device", "principal_id": "d"}).status_code == 422
        assert hubs.notary.log.size == size, "a refused binding is recorded nowhere"

        bound = call(url, qd, "POST", "/principals", {
            "principal_id": qd_station.principal_id, "role": "device", "public_key": qd_station.public_pem(),
            "venue_id": QD, "function": "checkin"})
        assert bound.status_code == 201 and bound.json()["bound"] is True, bound.text
        assert call(url, OPERATOR, "POST", "/principals", {
            "principal_id": main_station.principal_id, "role": "device", "public_key": main_station.public_pem(),
            "venue_id": MAIN, "function": "checkin"}).status_code == 201
        assert call(url, OPERATOR, "POST", "/principals", {
            "principal_id": court.principal_id, "role": "court", "public_key": court.public_pem(),
            "projects": [PROJECT]}).status_code == 201
        assert call(url, OPERATOR, "POST", "/principals", {
            "principal_id": platform.principal_id, "role": "supervisor", "public_key": platform.public_pem(),
            "endpoints": ["https://supervision.example/hook"]}).status_code == 201
        again = call(url, OPERATOR, "POST", "/principals", {
            "principal_id": court.principal_id, "role": "court", "public_key": court.public_pem(),
            "projects": [PROJECT]})
        assert again.status_code == 201 and again.json()["bound"] is False  # the same binding: nothing new
        other = call(url, OPERATOR, "POST", "/principals", {
            "principal_id": court.principal_id, "role": "court", "public_key": platform.public_pem(),
            "projects": [PROJECT]})
        assert other.status_code == 409 and "already bound" in other.json()["detail"]

        # The new principals act at once, with their bindings.
        assert call(url, platform, "POST", "/subscriptions", {
            "project_id": PROJECT, "url": "https://supervision.example/hook", "secret": "s" * 32}).status_code == 201
        assert call(url, court, "GET", "/sessions/S-404").status_code == 404  # past authorisation
        assert call(url, qd_station, "GET", "/venues").status_code == 403  # a device lists nothing

        # A venue operator revokes its own venue's devices only.
        assert call(url, qd, "POST", f"/principals/{main_station.principal_id}/revoke").status_code == 403
        assert call(url, qd, "POST", f"/principals/{court.principal_id}/revoke").status_code == 403
        assert call(url, SUPERVISOR, "POST", f"/principals/{court.principal_id}/revoke").status_code == 403
        assert call(url, qd, "POST", "/principals/nobody/revoke").status_code == 404
        assert call(url, qd, "POST", f"/principals/{qd_station.principal_id}/revoke").status_code == 200
        revoked = call(url, OPERATOR, "POST", f"/principals/{court.principal_id}/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True

        # Effective at once: the next request of a revoked principal is refused; its key is never bound again.
        assert call(url, court, "GET", "/sessions/S-404").status_code == 401
        assert call(url, qd_station, "GET", "/venues").status_code == 401
        rebind = call(url, OPERATOR, "POST", "/principals", {
            "principal_id": court.principal_id, "role": "court", "public_key": court.public_pem(),
            "projects": [PROJECT]})
        assert rebind.status_code == 409 and "revoked" in rebind.json()["detail"]

        changes = registry_records(hubs.notary)[start:]
        assert [(c["action"], c["subject"], c["by"]) for c in changes] == [
            ("principal_bound", qd_station.principal_id, qd.principal_id),
            ("principal_bound", main_station.principal_id, OPERATOR.principal_id),
            ("principal_bound", court.principal_id, OPERATOR.principal_id),
            ("principal_bound", platform.principal_id, OPERATOR.principal_id),
            ("principal_revoked", qd_station.principal_id, qd.principal_id),
            ("principal_revoked", court.principal_id, OPERATOR.principal_id),
        ]
        assert changes[2]["projects"] == [PROJECT] and changes[3]["endpoints"] == ["https://supervision.example/hook"]
        listed = {p["principal_id"]: p for p in call(url, OPERATOR, "GET", "/principals").json()}
        assert court.principal_id not in listed and listed[platform.principal_id]["role"] == "supervisor"

    with hubs.serving() as (_, url):  # across a restart: revoked stays revoked, bound stays bound
        assert call(url, court, "GET", "/sessions/S-404").status_code == 401
        assert call(url, main_station, "GET", "/venues").status_code == 403  # bound: authenticated, not allowed
        assert call(url, platform, "GET", "/subscriptions/SUB-1").status_code == 200


def test_a_revoked_principal_of_the_access_file_stops_the_hub_at_start_by_name(hubs: Hubs) -> None:
    hubs.register()
    with hubs.serving() as (_, url):
        assert call(url, OPERATOR, "POST", f"/principals/{VENUE_KEYS[QD].principal_id}/revoke").status_code == 200
        assert call(url, VENUE_KEYS[QD], "GET", "/venues").status_code == 401
    with pytest.raises(AccessConfigError, match=f"{VENUE_KEYS[QD].principal_id}.*revoked"):
        hubs.hub()


def test_an_access_file_that_changes_a_binding_is_refused_by_name(hubs: Hubs) -> None:
    from notary.access import write_access_config

    hubs.register()
    with hubs.serving():
        pass
    write_access_config(hubs.access, [OPERATOR.principal(Role.HUB_OPERATOR),
                                      VENUE_KEYS[QD].principal(Role.VENUE_OPERATOR, MAIN)])
    with pytest.raises(AccessConfigError, match=f"{VENUE_KEYS[QD].principal_id}.*bound as"):
        hubs.hub()
