"""The permission matrix, as README.md writes it, walked cell by cell over real HTTP against a running
notary and a running hub: an allowed cell gets past authorisation (whatever the request then meets: 200,
404, 409, 422), a refused one gets 401 for the public and 403 for a role, and nothing else."""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from hub.api import create_app as create_hub_app
from hub.config import HubConfig
from hub.server import serving_hub
from hub.service import Hub
from notary.access import PROJECT_BOUND, PUBLIC, PrincipalKey, Role, SignedRequests, write_access_config
from notary.api import create_app as create_notary_app
from notary.client import NotaryClient
from notary.server import running_notary
from notary.service import Notary
from tests.conftest import ADMIN, make_config

README = Path(__file__).resolve().parent.parent / "README.md"
PROJECT = "P-1"

# One request per route: (method, route path as declared, concrete path, JSON body). Ids that do not exist
# are used on purpose: an allowed caller then meets a 404 or a 422, never a 401 or 403.
NOTARY_ROUTES: dict[str, list[tuple[str, str, str, Any]]] = {
    "read_public": [
        ("GET", "/v1/checkpoint", "/v1/checkpoint", None), ("GET", "/v1/log", "/v1/log", None),
        ("GET", "/v1/anchors", "/v1/anchors", None), ("GET", "/healthz", "/healthz", None),
        ("GET", "/v1/submitters", "/v1/submitters", None),
        ("GET", "/v1/proof/inclusion", "/v1/proof/inclusion?leaf_index=5&tree_size=9", None),
        ("GET", "/v1/proof/consistency", "/v1/proof/consistency?first=0&second=0", None),
        ("GET", "/v1/records/{leaf_index}/receipt", "/v1/records/999999/receipt", None),
    ],
    "submit_records": [("POST", "/v1/records", "/v1/records", {})],
    "read_records": [
        ("GET", "/v1/records", f"/v1/records?project_id={PROJECT}", None),
        ("GET", "/v1/records/{leaf_index}", "/v1/records/999999", None),
        ("GET", "/v1/proof/bundle/{leaf_index}", "/v1/proof/bundle/999999", None),
    ],
    "read_extract": [("GET", "/v1/projects/{project_id}/extract", f"/v1/projects/{PROJECT}/extract", None)],
    "list_principals": [("GET", "/v1/principals", "/v1/principals", None)],
    "manage_principals": [
        ("POST", "/v1/principals", "/v1/principals", {}),
        ("POST", "/v1/principals/{principal_id}/revoke", "/v1/principals/nobody/revoke", None),
        ("POST", "/v1/submitters/{submitter_id}/revoke", "/v1/submitters/nobody/revoke", None),
    ],
    "read_metrics": [("GET", "/metrics", "/metrics", None)],
}

HUB_ROUTES: dict[str, list[tuple[str, str, str, Any]]] = {
    "read_public": [("GET", "/public/projects/{project_id}", "/public/projects/P-404", None),
                    ("GET", "/public/misconduct", "/public/misconduct", None),
                    ("GET", "/healthz", "/healthz", None)],
    "manage_registry": [("PUT", "/venues", "/venues", {}), ("PUT", "/experts", "/experts", {}),
                        ("POST", "/trusted-cas", "/trusted-cas", {})],
    "register_cameras": [("PUT", "/venues/{venue_id}/rooms/{room}/cameras", "/venues/V-1/rooms/R-404/cameras", {})],
    "list_venues": [("GET", "/venues", "/venues", None)],
    "run_session": [
        ("POST", "/sessions", "/sessions", {}),
        ("POST", "/sessions/{session_id}/offers", "/sessions/S-404/offers", {}),
        ("POST", "/sessions/{session_id}/draws", "/sessions/S-404/draws", {}),
        ("POST", "/sessions/{session_id}/draw-schedules", "/sessions/S-404/draw-schedules", {}),
        ("POST", "/sessions/{session_id}/roster", "/sessions/S-404/roster", None),
        ("POST", "/sessions/{session_id}/signatures", "/sessions/S-404/signatures", {}),
        ("POST", "/sessions/{session_id}/fees", "/sessions/S-404/fees", {}),
        ("POST", "/sessions/{session_id}/archive", "/sessions/S-404/archive", None),
        ("PATCH", "/bookings/{booking_id}", "/bookings/B-404", {}),
        ("POST", "/draws/{draw_id}/execute", "/draws/D-404/execute", None),
        ("POST", "/draws/{draw_id}/replacements", "/draws/D-404/replacements", {}),
    ],
    "answer_booking": [("POST", "/bookings/{booking_id}/{action}", "/bookings/B-404/confirm", {}),
                       ("POST", "/bookings/{booking_id}/{action}", "/bookings/B-404/decline", {})],
    "cancel_booking": [("POST", "/bookings/{booking_id}/{action}", "/bookings/B-404/cancel", {})],
    "file_objection": [("POST", "/sessions/{session_id}/objections", "/sessions/S-404/objections", {}),
                       ("POST", "/objections/{objection_id}/{action}", "/objections/O-404/withdraw", {})],
    "lead_objection": [("POST", "/objections/{objection_id}/{action}", "/objections/O-404/review", {}),
                       ("POST", "/objections/{objection_id}/{action}", "/objections/O-404/relay", {})],
    "answer_objection": [("POST", "/objections/{objection_id}/{action}", "/objections/O-404/answer", {})],
    "file_complaint": [("POST", "/sessions/{session_id}/complaints", "/sessions/S-404/complaints", {}),
                       ("POST", "/complaints/{complaint_id}/{action}", "/complaints/C-404/withdraw", {})],
    "handle_complaint": [("POST", "/complaints/{complaint_id}/{action}", "/complaints/C-404/accept", {}),
                         ("POST", "/complaints/{complaint_id}/{action}", "/complaints/C-404/decide", {})],
    "follow_case": [("GET", "/objections/{objection_id}", "/objections/O-404", None),
                    ("GET", "/complaints/{complaint_id}", "/complaints/C-404", None)],
    "report_incident": [("POST", "/sessions/{session_id}/incidents", "/sessions/S-404/incidents", {}),
                        ("POST", "/incidents/{incident_id}/resolve", "/incidents/I-404/resolve", {})],
    "report_checkin": [("POST", "/sessions/{session_id}/checkins", "/sessions/S-404/checkins", {})],
    "handle_misconduct": [("POST", "/misconduct", "/misconduct", {}),
                          ("POST", "/misconduct/{case_id}/{action}", "/misconduct/M-404/verify", None)],
    "read_session": [("GET", "/sessions/{session_id}", "/sessions/S-404", None),
                     ("GET", "/bookings/{booking_id}", "/bookings/B-404", None),
                     ("GET", "/sessions/{session_id}/timeline", "/sessions/S-404/timeline", None),
                     ("GET", "/sessions/{session_id}/draw-schedules", "/sessions/S-404/draw-schedules", None)],
    "read_cases": [("GET", "/misconduct/{case_id}", "/misconduct/M-404", None),
                   ("GET", "/misconduct/{case_id}/linked", "/misconduct/M-404/linked", None),
                   ("POST", "/misconduct/registry", "/misconduct/registry", {}),
                   ("GET", "/incidents/{incident_id}", "/incidents/I-404", None),
                   ("GET", "/alarms", "/alarms", None)],
    "read_draw": [("GET", "/draws/{draw_id}", "/draws/D-404", None),
                  ("GET", "/sessions/{session_id}/experts", "/sessions/S-404/experts", None)],
    "submit_bid": [("POST", "/sessions/{session_id}/bids", "/sessions/S-404/bids", {})],
    "read_statistics": [("GET", "/statistics", "/statistics?month=2026-11", None),
                        ("GET", "/signals", "/signals", None)],
    "subscribe": [("POST", "/subscriptions", "/subscriptions", {}),
                  ("GET", "/subscriptions/{subscription_id}", "/subscriptions/SUB-404", None),
                  ("DELETE", "/subscriptions/{subscription_id}", "/subscriptions/SUB-404", None)],
    "verify_extract": [("POST", "/extracts/verify", "/extracts/verify", {})],
    "list_principals": [("GET", "/principals", "/principals", None)],
    # Binding: a body with only the role gets past authorisation (then 422). Revoking: a victim of that role,
    # bound afresh before each cell (see `victims`), so an allowed caller really revokes one.
    **{action: [*(("POST", "/principals", "/principals", {"role": r}) for r in roles),
                ("POST", "/principals/{principal_id}/revoke", f"/principals/victim-{roles[0]}/revoke", None)]
       for action, roles in (("manage_hub_operators", ("hub_operator", "node_operator", "notary_admin")),
                             ("manage_venue_operators", ("venue_operator",)), ("manage_devices", ("device",)),
                             ("manage_supervisors", ("supervisor",)), ("manage_courts", ("court",)),
                             ("manage_parties", ("bidder", "tenderer")))},
}


def readme_matrix(title: str) -> dict[str, set[str]]:
    """The table of README.md whose first header cell is `title`: action -> roles marked ✓."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {title} |"))
    roles = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    matrix: dict[str, set[str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        action = re.match(r"`(\w+)`", cells[0])
        assert action, f"README matrix row without an action: {line}"
        assert set(cells[1:]) <= {"✓", "·"}, f"README matrix cells are ✓ or ·: {line}"
        matrix[action.group(1)] = {role for role, cell in zip(roles, cells[1:], strict=True) if cell == "✓"}
    return matrix


def keys_for_every_role() -> dict[str, PrincipalKey]:
    return {role.value: PrincipalKey.generate(f"{role.value}-1") for role in Role}


def principals(keys: dict[str, PrincipalKey]) -> list[Any]:
    out = []
    for role, key in keys.items():
        r = Role(role)
        out.append(key.principal(
            r, venue_id="V-1" if r in (Role.VENUE_OPERATOR, Role.DEVICE) else None,
            function="checkin" if r is Role.DEVICE else None,
            projects=[PROJECT] if r in PROJECT_BOUND else ()))
    return out


def routes_of(app: Any) -> set[tuple[str, str]]:
    return {(method, route.path) for route in app.routes if isinstance(route, APIRoute)
            for method in route.methods or () if method != "HEAD"}


def walk(base: str, matrix: dict[str, set[str]], routes: dict[str, list[tuple[str, str, str, Any]]],
         keys: dict[str, PrincipalKey], before: Callable[[str], None] | None = None) -> int:
    cells = 0
    for action, allowed_roles in matrix.items():
        for role in [PUBLIC, *keys]:
            auth = SignedRequests(keys[role]) if role != PUBLIC else None
            for method, _, path, body in routes[action]:
                if before is not None:
                    before(path)
                kwargs: dict[str, Any] = {"json": body} if body is not None else {}
                response = httpx.request(method, base + path, auth=auth, timeout=30, **kwargs)
                where = f"{role} {method} {path} ({action}): {response.status_code} {response.text[:200]}"
                assert response.status_code < 500, where
                if role in allowed_roles:
                    assert response.status_code not in (401, 403), "allowed as written, but refused: " + where
                else:
                    assert response.status_code == (401 if role == PUBLIC else 403), "refused as written: " + where
                cells += 1
    return cells


@pytest.fixture
def notary_with_every_role(tmp_path: Path) -> Iterator[tuple[Notary, str, dict[str, PrincipalKey]]]:
    keys = keys_for_every_role()
    with running_notary(make_config(tmp_path / "notary")) as (notary, url):
        for principal in principals(keys):
            notary.principals.bind(principal)
            notary.register_submitter_of(principal)
        yield notary, url, keys


def test_notary_permission_matrix_holds_cell_by_cell(notary_with_every_role: Any) -> None:
    notary, url, keys = notary_with_every_role
    matrix = readme_matrix("notary action")
    from notary.api.deps import PERMISSIONS

    assert matrix == {a: {str(r) for r in roles} for a, roles in PERMISSIONS.items()}, "README and code disagree"
    declared = {(m, p) for entries in NOTARY_ROUTES.values() for m, p, _, _ in entries}
    assert routes_of(create_notary_app(notary, start_sealer=False)) - {("GET", "/openapi.json"),
                                                                        ("GET", "/docs")} <= declared
    matrix.pop("read_disclosures")  # a refinement of read_extract, walked in the attack suite
    assert walk(url, matrix, NOTARY_ROUTES, keys) == (len(Role) + 1) * sum(len(NOTARY_ROUTES[a]) for a in matrix)


def victims(hub: Hub) -> Callable[[str], None]:
    """Before a revocation cell: bind a fresh principal of the role its path names (a revoked key is never
    bound again, so each time a new key under the same id), bound to the venue operator's venue."""
    def bind_victim(path: str) -> None:
        found = re.fullmatch(r"/principals/victim-(\w+)/revoke", path)
        if found is None or hub.principals.bound_as(f"victim-{found.group(1)}") is not None:
            return
        r = Role(found.group(1))
        hub.principals.bind(PrincipalKey.generate(f"victim-{r.value}").principal(
            r, venue_id="V-1" if r in (Role.VENUE_OPERATOR, Role.DEVICE) else None,
            function="recorder" if r is Role.DEVICE else None, projects=[PROJECT] if r in PROJECT_BOUND else ()))
    return bind_victim


def test_hub_permission_matrix_holds_cell_by_cell(tmp_path: Path) -> None:
    keys = keys_for_every_role()
    access = tmp_path / "hub-access.json"
    write_access_config(access, principals(keys))
    with running_notary(make_config(tmp_path / "notary")) as (_, notary_url):
        hub = Hub(HubConfig(data_dir=tmp_path / "hub", notary_url=notary_url, access=access))
        admin = NotaryClient(notary_url, as_principal=ADMIN)
        admin.register(hub.key, "hub")  # its access file's bindings are registry records it writes to the log
        admin.close()
        try:
            matrix = readme_matrix("hub action")
            from hub.api.deps import PERMISSIONS

            assert matrix == {a: {str(r) for r in roles} for a, roles in PERMISSIONS.items()}
            declared = {(m, p) for entries in HUB_ROUTES.values() for m, p, _, _ in entries}
            assert routes_of(create_hub_app(hub, start_jobs=False)) <= declared
            with serving_hub(hub, start_jobs=False) as url:
                cells = walk(url, matrix, HUB_ROUTES, keys, victims(hub))
                assert cells == (len(Role) + 1) * sum(len(HUB_ROUTES[a]) for a in matrix)
        finally:
            hub.close()


# ----- the signature profile verified directly (notary.access.verify_profile) against the library -----

BODY = b'{"records": []}'


def _signed(key: PrincipalKey, url: str, purpose: str | None = None, method: str = "POST") -> Any:
    request = httpx.Request(method, url, content=BODY, headers={"content-type": "application/json"})
    SignedRequests(key, purpose).sign(request)
    return request


@pytest.mark.parametrize("algorithm", ["ecdsa-p256-sha256", "ed25519"])
@pytest.mark.parametrize(("url", "purpose"), [
    ("http://127.0.0.1:8400/v1/records", None),
    ("http://127.0.0.1:8400/v1/projects/P-1/extract?disclose=true", "case 2026-17"),
    ("http://LocalHost:80/v1/records?project_id=P-1&after=%2C5", None),
    ("https://notary.example:443/a/b%20c/?", "audit"),
    ("http://[::1]:8400/v1/records", None),  # outside the profile's URL form: the library decides alone
])
def test_the_profile_path_accepts_what_the_library_accepts_with_the_same_result(algorithm: str, url: str,
                                                                                purpose: str | None) -> None:
    from notary.access import Authenticator, Registry, SignedMessage, verify_profile

    key = PrincipalKey.generate("V-1.cam1", algorithm)
    registry = Registry([key.principal(Role.DEVICE, "V-1", "recorder")])
    request = _signed(key, url, purpose)
    message = SignedMessage(request.method, str(request.url), request.headers)
    public = registry.key_of(key.principal(Role.DEVICE, "V-1", "recorder"))
    general = Authenticator._verify_general(message, BODY, key.principal_id, public)
    fast = verify_profile(message, BODY, key.principal_id, public)
    assert general == (general[0], purpose)
    if "[" in url:
        assert fast is None
    else:
        assert fast == general, "a request signed in the profile is verified on the profile path, alike"
    assert Authenticator(registry).authenticate(message, BODY).purpose == purpose


def _tampered(key: PrincipalKey) -> dict[str, tuple[Any, bytes]]:
    """Requests that must not verify: each a signed request changed in one way after signing."""
    from notary.access import SignedMessage

    def message(request: httpx.Request, **changes: Any) -> Any:
        headers = httpx.Headers(request.headers)
        for name, value in changes.pop("headers", {}).items():
            headers[name] = value
        return SignedMessage(changes.get("method", request.method), changes.get("url", str(request.url)), headers)

    base = "http://127.0.0.1:8400/v1/records"
    r = _signed(key, base + "?project_id=P-1", "case 1")
    sig_input = r.headers["signature-input"]
    old = _signed(key, base)
    import re as _re

    created = int(_re.search(r"created=(\d+)", sig_input).group(1))  # type: ignore[union-attr]
    return {
        "body": (message(r), b'{"records": [1]}'),
        "path": (message(r, url=base.replace("records", "recordz") + "?project_id=P-1"), BODY),
        "query": (message(r, url=base + "?project_id=P-2"), BODY),
        "method": (message(r, method="PUT"), BODY),
        "authority": (message(r, url=base.replace("8400", "8401") + "?project_id=P-1"), BODY),
        "purpose": (message(r, headers={"bidtrace-purpose": "case 2"}), BODY),
        "digest": (message(r, headers={"content-digest": "sha-256=:" + "A" * 43 + "=:"}), BODY),
        "tag": (message(r, headers={"signature-input": sig_input.replace('tag="bidtrace"', 'tag="other"')}), BODY),
        "created": (message(r, headers={"signature-input": sig_input.replace(f"created={created}",
                                                                              f"created={created - 600}")}), BODY),
        "another signature": (message(r, headers={"signature": old.headers["signature"]}), BODY),
        "two labels": (message(r, headers={"signature-input": sig_input + ", " + sig_input.replace("pyhms=", "b=")}),
                       BODY),
        "without the digest": (message(r, headers={"signature-input": sig_input.replace(' "content-digest"', "")}),
                               BODY),
    }


@pytest.mark.parametrize("algorithm", ["ecdsa-p256-sha256", "ed25519"])
def test_a_changed_request_is_refused_on_both_paths(algorithm: str) -> None:
    from notary.access import AccessDenied, Authenticator, Registry, verify_profile

    key = PrincipalKey.generate("V-1.cam1", algorithm)
    principal = key.principal(Role.DEVICE, "V-1", "recorder")
    registry = Registry([principal])
    for what, (message, body) in _tampered(key).items():
        assert verify_profile(message, body, key.principal_id, registry.key_of(principal)) is None, what
        with pytest.raises(AccessDenied) as refused:
            Authenticator(registry).authenticate(message, body)
        assert refused.value.status == 401, what
