"""Attacks on the hub over real HTTP: acting as another venue, a device speaking for another venue or
function, anonymous reads of what is sealed, webhooks to addresses nobody registered, hostile bodies,
personal data in free text. Each is refused with the right 4xx and writes no evidence."""

import json
import socket

import httpx
import pytest

from hub.api import create_app
from hub.config import HubConfig
from hub.service import Hub
from notary.access import AccessConfigError, Principal, PrincipalKey, Role, SignedRequests
from tests.conftest import device_bindings
from tests.hub.conftest import MAIN, PROJECT, QD, SUPERVISOR, YT, Stack, Station, setup_session

PII = ["身份证 110101199003077777", "手机 138-0013-8000", "ＴＥＬ ０５３１－８８８８８８８８", "91370000MA3C5XXXX1"]


def size(st: Stack) -> int:
    return st.notary.log.size


def test_a_venue_acts_only_for_itself_and_never_by_naming_a_venue(stack: Stack) -> None:
    st = stack
    bookings = setup_session(st, confirm=False)
    before = size(st)
    st.venue(QD).refused("POST", f"/bookings/{bookings[YT]}/confirm", {}, 403, f"only by {YT}", QD)
    st.refused("POST", f"/bookings/{bookings[YT]}/confirm", {}, 403, "may not answer booking")
    st.venue(YT).refused("POST", f"/bookings/{bookings[YT]}/confirm", {"by_venue": YT}, 422, "by_venue")
    st.venue(MAIN).refused("POST", f"/bookings/{bookings[YT]}/decline", {}, 403, f"only by {YT}")
    assert size(st) == before
    st.venue(YT).call("POST", f"/bookings/{bookings[YT]}/confirm", {})
    assert size(st) == before + 1

    o = st.call("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "质疑评分"}, 201)
    before = size(st)
    st.venue(QD).refused("POST", f"/objections/{o['objection_id']}/review", {}, 403, f"led by the main venue {MAIN}")
    st.refused("POST", f"/objections/{o['objection_id']}/review", {}, 403, "may not lead objection")
    st.venue(QD).refused("POST", f"/objections/{o['objection_id']}/withdraw", {}, 403, "may not file objection")
    st.venue(QD).refused("POST", "/sessions/S-1/incidents", {
        "venue_id": MAIN, "kind": "other", "description": "停电", "started_at": "2026-11-26T10:00:00+08:00"},
        403, f"report an incident at {MAIN}")
    st.venue(QD).refused("POST", "/sessions/S-1/incidents", {
        "venue_id": QD, "kind": "main_venue_switch", "description": "主场切换", "new_main_venue_id": QD,
        "started_at": "2026-11-26T10:00:00+08:00"}, 403, "may not run session")
    st.venue(QD).refused("PUT", "/venues", {"venue_id": QD, "name": "n", "city": "c", "rooms": ["r"]}, 403,
                         "may not manage registry")
    assert size(st) == before


def test_a_venue_reads_only_the_sessions_it_takes_part_in(stack: Stack) -> None:
    st = stack
    bookings = setup_session(st)  # S-1: main venue MAIN, QD and YT confirmed
    st.call("POST", "/sessions", {"session_id": "S-2", "project_id": "SD-2026-JN-0999", "main_venue_id": MAIN,
                                  "room": "评标室 2", "slot_start": "2026-11-27T09:30:00+08:00",
                                  "slot_end": "2026-11-27T17:30:00+08:00", "bidders": []}, 201)
    offered = st.call("POST", "/sessions/S-2/offers", {"venue_id": QD, "room": "评标室 2"}, 201)["booking_id"]
    st.venue(QD).call("POST", f"/bookings/{offered}/confirm")
    before = size(st)
    for path in ("/sessions/S-2", "/sessions/S-2/timeline", f"/bookings/{offered}"):
        st.venue(YT).refused("GET", path, None, 403, YT)  # YT takes no part in S-2
    st.venue(QD).refused("GET", f"/bookings/{bookings[YT]}", None, 403, QD)  # another secondary's booking
    assert size(st) == before, "a refused read is recorded nowhere"
    assert st.venue(QD).call("GET", "/sessions/S-2")["session_id"] == "S-2"
    assert st.venue(MAIN).call("GET", f"/bookings/{bookings[YT]}")["venue_id"] == YT
    assert st.venue(YT).call("GET", "/sessions/S-1")["session_id"] == "S-1"


def test_a_device_reports_check_ins_only_at_its_venue_and_only_as_a_station(stack: Stack) -> None:
    st = stack
    setup_session(st)
    committed = st.call("POST", "/sessions/S-1/draws", {
        "criteria": {"specialty": "房屋建筑工程"},
        "venues": [{"venue_id": MAIN, "count": 1}, {"venue_id": QD, "count": 1}]}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    at_main = drawn["assignments"][MAIN][0]
    station = Station(st, MAIN)
    receipt = st.admin.submit(station.key, [{
        "type": "checkin", "project_id": PROJECT, "session_id": "S-1", "venue_id": MAIN,
        "device_id": station.key.submitter_id, "occurred_at": "2026-11-26T10:00:00+08:00",
        "payload": {"expert_commitment": "c1:" + "0" * 64, "method": "card", "result": "unverified"}}])[0]
    qd_station, qd_camera = PrincipalKey.generate(f"{QD}.checkin"), PrincipalKey.generate(f"{MAIN}.cam1")
    for key in (qd_station, qd_camera):
        st.hub.principals.bind(key.principal(Role.DEVICE, *device_bindings(key.principal_id)))
    report = {"expert_id": at_main, "checkin_leaf": receipt.leaf_index}
    st.as_key(qd_station).refused("POST", "/sessions/S-1/checkins", report, 403, f"sits in {MAIN}", QD)
    st.as_key(qd_camera).refused("POST", "/sessions/S-1/checkins", report, 403, "not a check-in station")
    st.as_key(qd_station).refused("GET", "/sessions/S-1/experts", None, 403, "may not read draw")


def test_sealed_things_are_not_readable_without_the_role_and_reading_them_is_evidence(stack: Stack) -> None:
    st = stack
    setup_session(st)
    committed = st.call("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "房屋建筑工程"}, "count": 3}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    for path in (f"/draws/{committed['draw_id']}", "/sessions/S-1/experts", "/sessions/S-1/timeline",
                 "/sessions/S-1", "/alarms", "/venues"):
        response = httpx.get(st.url + path)
        assert response.status_code == 401, f"{path}: {response.status_code}"
        assert drawn["revealed_seed"] not in response.text
    for venue in (MAIN, QD):
        st.venue(venue).refused("GET", f"/draws/{committed['draw_id']}", None, 403, "may not read draw")
    public = httpx.get(st.url + f"/public/projects/{PROJECT}").json()
    (draw_view,) = public["sessions"][0]["draws"]
    assert draw_view["experts"] == "sealed until the evaluation ends" and "selected" not in draw_view
    assert not any(e in json.dumps(public) for e in drawn["selected"])

    before = size(st)
    supervisor = st.as_key(SUPERVISOR)
    assert supervisor.call("GET", "/sessions/S-1/experts")
    access = json.loads(st.notary.log.entry(before) or b"{}")["record"]
    assert access["type"] == "access" and access["session_id"] == "S-1"
    assert access["payload"]["principal_id"] == SUPERVISOR.principal_id
    assert access["payload"]["action"] == "read_drawn_experts"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8400/v1/principals", "http://localhost:8500/venues", "http://[::1]/", "http://169.254.169.254/",
    "http://10.0.0.1/hook", "https://supervision.example/hook?x=1", "http://user:pw@supervision.example/hook",
    "file:///etc/passwd", "gopher://127.0.0.1:25/",
])
def test_webhooks_go_only_to_registered_supervisor_endpoints(stack: Stack, url: str) -> None:
    st = stack
    setup_session(st)
    registered = "https://supervision.example/hook"
    platform = PrincipalKey.generate("supervision-platform")
    st.hub.principals.bind(Principal(platform.principal_id, Role.SUPERVISOR, platform.public_pem(),
                                     endpoints=frozenset({registered})))
    body = {"project_id": PROJECT, "url": url, "secret": "s" * 32}
    for party in (st, st.as_key(platform), st.as_key(SUPERVISOR)):
        detail = party.refused("POST", "/subscriptions", body, 422 if not url.startswith("http") else 403)
        assert url in detail or "url" in detail
    # a supervisor may not use another supervisor's endpoint
    st.as_key(SUPERVISOR).refused("POST", "/subscriptions", {**body, "url": registered}, 403, "not a registered")
    assert st.as_key(platform).call("POST", "/subscriptions", {**body, "url": registered}, 201)


def test_a_supervisor_sees_and_cancels_only_its_own_subscriptions(stack: Stack) -> None:
    st = stack
    setup_session(st)
    platform = PrincipalKey.generate("supervision-platform")
    st.hub.principals.bind(Principal(platform.principal_id, Role.SUPERVISOR, platform.public_pem(),
                                     endpoints=frozenset({"https://supervision.example/hook"})))
    sub = st.as_key(platform).call("POST", "/subscriptions", {
        "project_id": PROJECT, "url": "https://supervision.example/hook", "secret": "s" * 32}, 201)
    path = f"/subscriptions/{sub['subscription_id']}"
    other = st.as_key(SUPERVISOR)
    other.refused("GET", path, None, 403, "belongs to another subscriber")
    other.refused("DELETE", path, None, 403, "belongs to another subscriber")
    assert st.as_key(platform).call("GET", path)["active"] is True  # still active: the refusal changed nothing
    assert st.call("GET", path)["url"] == "https://supervision.example/hook"  # the province sees them all
    assert st.as_key(platform).call("DELETE", path)["active"] is False


FREE_TEXT = [
    ("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "{}"}, "body.summary"),
    ("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "other", "description": "{}",
                                         "started_at": "2026-11-26T10:00:00+08:00"}, "body.description"),
    ("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder", "subject_id": "X",
                             "description": "{}"}, "body.description"),
    ("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder", "subject_id": "X",
                             "subject_name": "{}", "description": "d"}, "body.subject_name"),
    ("PUT", "/venues", {"venue_id": "V-9", "name": "{}", "city": "c", "rooms": ["r"]}, "body.name"),
    ("PUT", "/venues", {"venue_id": "V-9", "name": "n", "city": "c", "rooms": ["{}"]}, "body.rooms.0"),
    ("POST", "/sessions/S-1/fees", {"expert_id": "E-0001", "amount_fen": 1, "payer": "{}"}, "body.payer"),
    ("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "{}"}, "count": 1}, "body.criteria.specialty"),
    ("PATCH", "/bookings/B-1", {"reason": "{}"}, "body.reason"),
]


@pytest.mark.parametrize(("method", "path", "shape", "field"), FREE_TEXT, ids=[f[3] + " " + f[1] for f in FREE_TEXT])
def test_personal_data_in_hub_free_text_is_422_naming_the_field(stack: Stack, method: str, path: str,
                                                                shape: dict[str, object], field: str) -> None:
    st = stack
    setup_session(st)
    before = size(st)
    for text in PII:
        body = json.loads(json.dumps(shape).replace('"{}"', json.dumps(text)))
        st.refused(method, path, body, 422, field, "personal data")
    assert size(st) == before


def test_hostile_bodies_are_refused_before_any_work(stack: Stack) -> None:
    st = stack
    before = size(st)
    limit = st.hub.config.max_body_bytes
    too_big = st.api.post("/sessions", content=b"[" + b"0," * (limit // 2) + b"0]",
                          headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and str(limit) in too_big.json()["detail"]
    host, port = st.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"PUT /experts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 52428800\r\n\r\n{")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    nan = st.api.put("/experts", content=b'{"experts": [{"expert_id": "E-1", "level": NaN}]}',
                     headers={"content-type": "application/json"})
    assert nan.status_code == 422 and "NaN" in nan.json()["detail"]
    assert size(st) == before


def test_the_hub_refuses_to_start_without_an_access_configuration(stack: Stack) -> None:
    hub = Hub(HubConfig(data_dir=stack.hub.config.data_dir.parent / "other-hub", notary_url=stack.notary_url))
    try:
        with pytest.raises(AccessConfigError, match="no access configuration"):
            create_app(hub)
    finally:
        hub.close()
    unsigned_op = httpx.Client(base_url=stack.url, auth=SignedRequests(PrincipalKey.generate("hub-operator-1")))
    assert unsigned_op.get("/venues").status_code == 401  # the operator's name with another key


def test_a_hub_database_that_refuses_writes_gets_503_and_degraded_health(stack: Stack) -> None:
    from typing import Any

    from sqlalchemy import event

    st = stack

    def read_only(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only=ON")

    event.listen(st.hub.engine, "connect", read_only)
    st.hub.engine.dispose()
    try:
        detail = st.refused("PUT", "/venues", {"venue_id": MAIN, "name": "n", "city": "c", "rooms": ["r"]}, 503,
                            "refused a write", "nothing was changed")
        assert "readonly" in detail
        health = httpx.get(st.url + "/healthz").json()
        assert health["status"] == "degraded" and "refused a write" in health["last_error"]
    finally:
        event.remove(st.hub.engine, "connect", read_only)
        st.hub.engine.dispose()
    assert httpx.get(st.url + "/healthz").json()["status"] == "ok"


def test_a_read_is_refused_with_nothing_released_if_its_reader_is_revoked_meanwhile(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.api.sessions
    from hub.workflows import draws
    from tests.test_attacks import Held

    st = stack
    setup_session(st)
    committed = st.call("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "房屋建筑工程"}, "count": 3}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    supervisor = st.as_key(SUPERVISOR)

    # Held before its access record is written: refused there, and nothing is recorded for the revoked reader.
    hold = Held(monkeypatch, hub.api.sessions, "check_session")
    before = size(st)
    response = hold.during(lambda: supervisor.api.get("/sessions/S-1/timeline"),
                           lambda: st.call("POST", f"/principals/{SUPERVISOR.principal_id}/revoke"))
    assert response.status_code == 401 and "revoked while its request was under way" in response.text
    types = [json.loads(st.notary.log.entry(i) or b"{}")["record"]["type"] for i in range(before, size(st))]
    assert types == ["registry"], "the revocation is recorded; no access by the revoked reader"
    monkeypatch.undo()

    # Held after its access record, while the sealed experts are being read: refused, none of them released.
    platform = PrincipalKey.generate("supervision-platform")
    st.call("POST", "/principals", {"principal_id": platform.principal_id, "role": "supervisor",
                                    "public_key": platform.public_pem()}, 201)
    hold = Held(monkeypatch, draws, "session_experts")
    response = hold.during(lambda: st.as_key(platform).api.get("/sessions/S-1/experts"),
                           lambda: st.call("POST", f"/principals/{platform.principal_id}/revoke"))
    assert response.status_code == 401 and "nothing is served" in response.json()["detail"]
    assert not any(e in response.text for e in drawn["selected"])


SPLIT = [
    ("POST", "/sessions/S-1/objections", {"filed_by": "某投标人 1101051949", "summary": "1231002X 质疑评分"},
     "resident identity number", ["filed_by", "summary"]),
    ("PUT", "/venues", {"venue_id": "V-9", "name": "n", "city": "c", "rooms": ["138", "0013", "8000"]},
     "mobile phone number", ["rooms.0", "rooms.1", "rooms.2"]),
    ("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder", "subject_id": "X",
                             "subject_name": "某公司 电话 0531", "description": "8888-8888 联系"},
     "landline phone number", ["subject_name", "description"]),
    ("POST", "/sessions", {"session_id": "S-9", "project_id": "P-9", "main_venue_id": MAIN, "room": "评标室 1",
                           "slot_start": "2026-11-26T09:30:00+08:00", "slot_end": "2026-11-26T17:30:00+08:00",
                           "bidders": [{"name": "单位 91370000", "credit_code": "x"},
                                       {"name": "MA3C5X7X2D 有限公司", "credit_code": "y"}]},
     "unified social credit code", ["bidders.0.name", "bidders.1.name"]),
]


@pytest.mark.parametrize(("method", "path", "body", "what", "fields"), SPLIT, ids=[s[1] for s in SPLIT])
def test_a_number_spread_over_several_fields_is_422_naming_them(stack: Stack, method: str, path: str,
                                                               body: dict[str, object], what: str,
                                                               fields: list[str]) -> None:
    st = stack
    setup_session(st)
    before = size(st)
    detail = st.refused(method, path, body, 422, what, "in pieces", *fields)
    assert "1101051949" not in detail and "0013" not in detail
    assert size(st) == before


def test_ordinary_numbers_in_separate_fields_pass(stack: Stack) -> None:
    st = stack
    setup_session(st)
    st.call("PUT", "/venues", {"venue_id": "V-9", "name": "评标中心 2", "city": "济南",
                               "rooms": ["1", "2", "3", "101", "102", "2026 新楼 301"]})
    st.call("POST", "/sessions/S-1/objections",
            {"filed_by": "投标人 3 号", "summary": "2026-11-26 第 2 标段评分 87.5"}, 201)
    st.call("POST", "/sessions/S-1/fees", {"expert_id": "E-0001", "amount_fen": 138_000, "payer": "交易中心 1380"},
            409)  # past validation: E-0001 was not drawn
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "other", "description": "10:05 断电 15 分钟",
                                                "started_at": "2026-11-26T10:00:00+08:00"}, 201)
