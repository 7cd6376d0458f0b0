"""A real notary and hub over HTTP on 127.0.0.1 with one evaluation under way, and Debian's chromium driven
by Playwright. Without chromium the browser tests skip, except in CI (CI=true), where they fail.

The evaluation: project SD-2026-JN-0417, session S-1 at the Jinan main venue with Qingdao and Yantai
confirmed, an anchored expert draw, check-ins from the venues' stations, recordings from two cameras, an
objection past its deadline, a published misconduct case; and project SD-2026-QD-0502, session S-2,
offered to Qingdao and not yet answered, whose camera skipped a segment. The genuine extract of the first
project and a tampered copy are written beside the published roots the hub is configured with.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import HubConfig
from hub.server import serving_hub
from hub.service import Hub
from hub.web.login import request_login_link
from notary.access import PrincipalKey, Role, SignedRequests, write_access_config
from notary.client import NotaryClient, SubmitterKey
from notary.extract import build_extract, published_roots
from notary.server import running_notary
from tests.conftest import ADMIN, make_config, wait_until
from tests.forgery_kit import files_of, record_of_type, rezip
from tests.hub.conftest import (
    MAIN,
    OPERATOR,
    PROJECT,
    QD,
    SUPERVISOR,
    VENUE_KEYS,
    YT,
    Stack,
    Station,
    setup_session,
    slot_around_now,
)

SECOND_PROJECT = "SD-2026-QD-0502"
COURT = PrincipalKey.generate("court-jinan-1")
SECOND_SUPERVISOR = PrincipalKey.generate("supervisor-2")
SCREENSHOTS = os.environ.get("BIDTRACE_SCREENSHOTS")  # a folder: each page's screenshot is saved there


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Scenario:
    st: Stack
    url: str
    extract: Path
    tampered: Path
    tampered_member: str
    draw: dict[str, Any]
    offered_booking: str
    personal: list[str]  # values that must never reach a public page

    def login_link(self, key: PrincipalKey) -> str:
        return request_login_link(self.url, key)


def _segments(camera: str, project: str, session: str, venue: str, device: str, count: int,
              skip: int | None = None) -> list[dict[str, Any]]:
    """`count` ten-second segments that ended before now, hash-chained; index `skip` never delivered."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10 * count + 5)
    out, previous = [], None
    for i in range(count):
        digest = hashlib.sha256(f"{device} {camera} {i}".encode()).hexdigest()
        seg = {"type": "recording_segment", "project_id": project, "session_id": session, "venue_id": venue,
               "device_id": device, "occurred_at": (start + timedelta(seconds=10 * (i + 1))).isoformat(),
               "payload": {"camera_id": camera, "segment_index": i, "start": (start + timedelta(seconds=10 * i))
                           .isoformat(), "end": (start + timedelta(seconds=10 * (i + 1))).isoformat(),
                           "frame_count": 250, "sha256": digest, "previous_segment": previous}}
        previous = digest
        if i != skip:
            out.append(seg)
    return out


def _record_cameras(st: Stack, cameras: list[tuple[str, str, str, str, int | None]]) -> None:
    for venue, camera, project, session, skip in cameras:
        key = SubmitterKey.generate(f"{venue}.{camera}")
        st.admin.register(key, "device", venue, "recorder")
        st.admin.submit(key, _segments(camera, project, session, venue, key.submitter_id, 4, skip))


def _evaluation(st: Stack) -> tuple[dict[str, Any], str]:
    slot = slot_around_now()
    setup_session(st, slot=slot)
    committed = st.call("POST", "/sessions/S-1/draws", {
        "criteria": {"specialty": "房屋建筑工程", "level": "高级"},
        "venues": [{"venue_id": MAIN, "count": 2}, {"venue_id": QD, "count": 1}, {"venue_id": YT, "count": 1}]}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    stations = {v: Station(st, v) for v in (MAIN, QD, YT)}
    for venue, experts in drawn["assignments"].items():
        for expert in experts[:1]:  # one expert per venue has checked in so far
            stations[venue].check_in("S-1", expert)
    _record_cameras(st, [(MAIN, "cam1", PROJECT, "S-1", None), (QD, "cam1", PROJECT, "S-1", None)])
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    st.call("POST", "/sessions/S-1/objections", {"filed_by": "青岛海建有限公司法定代表人王某",
                                                 "summary": "对评分结果提出异议", "deadline": past}, 201)
    m = st.call("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "bidder",
                                        "subject_id": "91370200MA3D6XXXX2", "subject_name": "青岛海建有限公司",
                                        "description": "投标文件雷同，疑似围标串标",
                                        "evidence": [drawn["result_leaf"]]}, 201)
    for step in ("verify", "publish"):
        st.call("POST", f"/misconduct/{m['case_id']}/{step}", {})
    # A second project: offered to Qingdao, not answered yet; its camera at the main venue skipped a segment.
    st.call("POST", "/sessions", {"session_id": "S-2", "project_id": SECOND_PROJECT, "main_venue_id": MAIN,
                                  "room": "评标室 2", "slot_start": slot[0], "slot_end": slot[1]}, 201)
    offered = st.call("POST", "/sessions/S-2/offers", {"venue_id": QD, "room": "评标室 2"}, 201)
    _record_cameras(st, [(MAIN, "cam2", SECOND_PROJECT, "S-2", 2)])
    return drawn, offered["booking_id"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("console")
    with running_notary(make_config(tmp / "notary", seal_interval=0.2)) as (notary, notary_url):
        roots = tmp / "published-roots.json"
        roots.write_bytes(published_roots(notary.log, notary.ledger).encode())
        access = tmp / "hub-access.json"
        write_access_config(access, [
            OPERATOR.principal(Role.HUB_OPERATOR), SUPERVISOR.principal(Role.SUPERVISOR),
            SECOND_SUPERVISOR.principal(Role.SUPERVISOR), COURT.principal(Role.COURT, projects=[PROJECT]),
            *(k.principal(Role.VENUE_OPERATOR, v) for v, k in VENUE_KEYS.items())])
        hub = Hub(HubConfig(data_dir=tmp / "hub", notary_url=notary_url, access=access, trust=roots,
                            tail_interval=0.1, deliver_interval=0.1, deadline_interval=0.2, beacon_wait=20))
        admin = NotaryClient(notary_url, as_principal=ADMIN)
        admin.register(hub.key, "hub")
        try:
            with serving_hub(hub) as url, httpx.Client(base_url=url, timeout=60, auth=SignedRequests(OPERATOR)) as api:
                st = Stack(notary, notary_url, hub, url, api, admin)
                drawn, offered = _evaluation(st)
                wait_until(lambda: notary.sealer.state.anchored_size >= notary.log.size, 30, "the log to be anchored")
                extract = tmp / "extract.zip"
                extract.write_bytes(build_extract(notary.log, notary.ledger, PROJECT))
                files = files_of(extract.read_bytes())
                member = record_of_type(files, "checkin")
                record = json.loads(files[member])
                record["entry"]["record"]["payload"]["result"] = "verified"  # a check-in that was not
                files[member] = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
                tampered = tmp / "tampered.zip"
                tampered.write_bytes(rezip(files))
                yield Scenario(st, url, extract, tampered, member, drawn, offered,
                               personal=["王某", "91370200MA3D6XXXX2", "专家0", "3701021970", "c1:"])
        finally:
            admin.close()
            hub.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for the browser tests (scripts/setup installs it)")
        pytest.skip("chromium is not installed (scripts/setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, scenario: Scenario, key: PrincipalKey) -> None:
    """Follow a login link made with `key` and confirm it, as a person would."""
    page.goto(scenario.login_link(key))
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
    assert key.principal_id in page.inner_text("header"), page.inner_text("body")[:400]


@contextmanager
def browsing(browser: Any, scenario: Scenario, key: PrincipalKey | None, width: int = 1280) -> Iterator[Any]:
    """A page in a fresh browser context, signed in as `key`'s principal (anonymous when None)."""
    context = browser.new_context(viewport={"width": width, "height": 800 if width > 640 else 740}, locale="zh-CN")
    try:
        page = context.new_page()
        if key is not None:
            sign_in(page, scenario, key)
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))
