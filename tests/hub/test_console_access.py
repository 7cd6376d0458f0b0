"""Signing in to the console and what a console session may do, over real HTTP without a browser: login
links only for signed requests of people, codes once and briefly, sessions that end, the API's permission
checks on every page, and reads recorded as the API records them."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from hub import db
from hub.web.login import COOKIE, LoginRefused, request_login_link
from notary.access import PrincipalKey, Role, SignedRequests
from tests.conftest import wait_until
from tests.hub.conftest import MAIN, OPERATOR, QD, SUPERVISOR, VENUE_KEYS, Stack, setup_session


def signed_in(st: Stack, key: PrincipalKey) -> httpx.Client:
    """A browser-like client holding a console session of `key`'s principal."""
    link = request_login_link(st.url, key)
    client = httpx.Client(base_url=st.url, timeout=60, follow_redirects=False)
    code = link.split("code=", 1)[1]
    assert client.get("/console/login", params={"code": code}).status_code == 200
    answer = client.post("/console/login", data={"code": code})
    assert answer.status_code == 303 and COOKIE in client.cookies, answer.text
    return client


@pytest.fixture
def console(stack: Stack) -> Iterator[Stack]:
    setup_session(stack)
    yield stack


def test_only_a_signed_request_of_a_person_gets_a_login_link(console: Stack) -> None:
    st = console
    assert httpx.post(f"{st.url}/console/login-links").status_code == 401
    device = PrincipalKey.generate(f"{MAIN}.checkin")
    st.hub.principals.bind(device.principal(Role.DEVICE, MAIN, "checkin"))
    with pytest.raises(LoginRefused, match="is a device; the console is for people"):
        request_login_link(st.url, device)
    stranger = PrincipalKey.generate("nobody-1")
    with pytest.raises(LoginRefused, match="not registered"):
        request_login_link(st.url, stranger)


def test_a_login_code_works_once_and_not_after_it_expires(console: Stack) -> None:
    st = console
    code = request_login_link(st.url, SUPERVISOR).split("code=", 1)[1]
    with httpx.Client(base_url=st.url) as browser:
        assert browser.post("/console/login", data={"code": code}).status_code == 303
        again = browser.post("/console/login", data={"code": code})
        assert again.status_code == 400 and "already used or expired" in again.text
        assert code not in again.text  # the code is never echoed
        late = request_login_link(st.url, SUPERVISOR).split("code=", 1)[1]
        with st.hub.db() as s:
            s.execute(update(db.ConsoleLogin).values(expires_at=time.time() - 1))
            s.commit()
        assert browser.get("/console/login", params={"code": late}).status_code == 400
        assert browser.post("/console/login", data={"code": late}).status_code == 400
        assert browser.post("/console/login", data={"code": ""}).status_code == 400


def test_an_idle_session_ends_and_sign_out_ends_it_at_once(console: Stack) -> None:
    st = console
    browser = signed_in(st, SUPERVISOR)
    assert browser.get("/console/supervision").status_code == 200
    with st.hub.db() as s:
        s.execute(update(db.ConsoleSessionRow).values(last_seen=time.time() - 31 * 60))
        s.commit()
    assert browser.get("/console/supervision").status_code == 303  # back to signing in
    browser = signed_in(st, SUPERVISOR)
    page = browser.get("/console/supervision").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert browser.post("/console/logout", data={"csrf": csrf}).status_code == 303
    assert browser.get("/console/supervision").status_code == 303


def test_console_pages_keep_the_apis_permissions(console: Stack) -> None:
    st = console
    venue = signed_in(st, VENUE_KEYS[QD])
    for path in ("/console/supervision", "/console/cases", "/console/verify", f"/console/venues/{MAIN}"):
        answer = venue.get(path)
        assert answer.status_code == 403, (path, answer.status_code)
    assert venue.get(f"/console/venues/{QD}").status_code == 200
    assert venue.get("/console/sessions/S-1").status_code == 200  # its venue is confirmed in S-1
    operator = signed_in(st, OPERATOR)
    assert operator.get(f"/console/venues/{MAIN}").status_code == 403  # the province is no venue
    assert operator.get("/console/proof/999999").status_code == 404
    stream = httpx.get(f"{st.url}/console/sessions/S-1/stream", headers={"accept": "text/event-stream"})
    assert stream.status_code == 401


def test_reading_a_timeline_in_the_console_is_recorded_with_who_and_why(console: Stack) -> None:
    st = console
    supervisor = signed_in(st, SUPERVISOR)
    assert supervisor.get("/console/sessions/S-1").status_code == 200

    def recorded() -> list[dict[str, object]]:
        with st.hub.db() as s:
            rows = s.query(db.EvidenceRow).filter(db.EvidenceRow.type == "access").all()
            return [r.record["payload"] for r in rows]
    wait_until(lambda: any(p.get("principal_id") == SUPERVISOR.principal_id for p in recorded()), 10,
               "the console's read to be recorded")
    read = next(p for p in recorded() if p.get("principal_id") == SUPERVISOR.principal_id)
    assert read == {"principal_id": SUPERVISOR.principal_id, "role": "supervisor", "action": "read_timeline",
                    "resource": "GET /console/sessions/S-1", "purpose": "web console"}


def test_an_upload_through_the_api_is_checked_against_no_roots_as_untrusted_at_best(console: Stack,
                                                                                   tmp_path: Path) -> None:
    st = console
    answer = httpx.post(f"{st.url}/extracts/verify", content=b"PK\x03\x04 not a zip", timeout=60,
                        auth=SignedRequests(SUPERVISOR))
    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"] == "FAILED" and body["errors"], body
    empty = httpx.post(f"{st.url}/extracts/verify", content=b"", timeout=60, auth=SignedRequests(SUPERVISOR))
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


def test_a_bad_form_is_refused_naming_the_field(console: Stack) -> None:
    st = console
    venue = signed_in(st, VENUE_KEYS[QD])
    page = venue.get(f"/console/venues/{QD}").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = venue.post(f"/console/venues/{QD}/incidents",
                        data={"csrf": csrf, "session_id": "S-1", "kind": "fire", "description": "烟雾"})
    assert answer.status_code == 422 and "kind" in answer.text
    other = venue.post(f"/console/venues/{QD}/incidents",
                       data={"csrf": csrf, "session_id": "S-404", "kind": "other", "description": "烟雾"})
    assert other.status_code == 404 and "session S-404 does not exist" in other.text
