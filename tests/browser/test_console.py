"""The consoles in a real browser (Debian's chromium): signing in per role, a session watched live, an
extract verified by upload, a venue kept to its own console, the public page, and the layout on a phone."""

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from notary.access import SignedRequests
from tests.browser.conftest import (
    COURT,
    SECOND_PROJECT,
    SECOND_SUPERVISOR,
    Scenario,
    browsing,
    screenshot,
    sign_in,
)
from tests.hub.conftest import MAIN, OPERATOR, PROJECT, QD, SUPERVISOR, VENUE_KEYS, YT
from verifier.statistics import PROVINCE_TIME, MonthlyStatistics

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(("key", "lands_on", "heading"), [
    (SUPERVISOR, "/console/supervision", "监管台"),
    (OPERATOR, "/console/supervision", "监管台"),
    (VENUE_KEYS[QD], f"/console/venues/{QD}", "场地工作台"),
    (COURT, "/console/verify", "上传核验"),
], ids=["supervisor", "hub_operator", "venue_operator", "court"])
def test_each_role_signs_in_with_its_key_and_lands_on_its_console(page: Any, scenario: Scenario, key: Any,
                                                                  lands_on: str, heading: str) -> None:
    sign_in(page, scenario, key)
    assert page.url.endswith(lands_on)
    assert heading in page.inner_text("h1")
    cookie = next(c for c in page.context.cookies() if c["name"] == "bidtrace_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_login_link_works_once_and_a_revoked_principal_loses_its_session(page: Any, scenario: Scenario) -> None:
    link = scenario.login_link(SECOND_SUPERVISOR)
    page.goto(link)
    page.get_by_role("button", name="登录").click()
    assert page.url.endswith("/console/supervision")
    page.goto(link)  # the same link again
    assert "already used" in page.inner_text("main")
    scenario.st.hub.principals.revoke(SECOND_SUPERVISOR.principal_id)
    page.goto(scenario.url + "/console/supervision")
    assert page.url.rstrip("/").endswith("/console") and "bidtrace hub login" in page.inner_text("main")


def test_forms_without_the_sessions_csrf_token_are_refused(page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, VENUE_KEYS[QD])
    answer = page.request.post(f"{scenario.url}/console/venues/{QD}/bookings/{scenario.offered_booking}/decline",
                               form={"csrf": "not-the-token"})
    assert answer.status == 403 and "CSRF" in answer.text()
    with httpx.Client(base_url=scenario.url) as anonymous:
        assert anonymous.post(f"/console/venues/{QD}/incidents", data={}).status_code == 303  # to sign in


def test_a_session_timeline_updates_live_as_evidence_arrives(page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, SUPERVISOR)
    page.goto(scenario.url + "/console/sessions/S-1")
    page.evaluate("window.notReloaded = true")
    before = page.locator("#timeline tr").count()
    assert before > 0
    incident = scenario.st.call("POST", "/sessions/S-1/incidents", {
        "venue_id": YT, "kind": "network_failure", "description": "政务外网中断",
        "started_at": scenario.st.hub.stamp()}, 201)
    leaf = incident["leaves"][0]
    page.locator(f"#leaf-{leaf}").wait_for(timeout=15_000)
    assert page.evaluate("window.notReloaded") is True  # the row came by server-sent event, not a reload
    assert "突发事件" in page.inner_text(f"#leaf-{leaf}")
    page.locator(f"#leaf-{leaf}").scroll_into_view_if_needed()
    screenshot(page, "session-timeline")
    # Prove it: the inclusion proof to the anchored root, checked on the page, and the receipt's signature.
    scenario.st.wait_anchored(leaf)
    page.locator(f"#leaf-{leaf} a").click()
    findings = page.inner_text(".findings")
    assert "✓ inclusion" in findings and "✓ receipt" in findings, findings
    assert "embedded" in page.inner_text("main")
    screenshot(page, "prove-it")


def test_the_session_list_shows_states_and_alarms(page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, SUPERVISOR)
    rows = page.inner_text("#sessions")
    assert "S-1" in rows and "S-2" in rows and SECOND_PROJECT in rows
    assert "异议逾期" in rows  # the objection past its deadline
    assert "录像断档" in rows and "cam2: #1 → #3" in rows  # S-2's camera skipped segment 2
    assert "cam1: #" not in rows  # Jinan's and Qingdao's "cam1" are two cameras, each without a gap
    assert "迟到签到" in rows and "未签到" in rows
    screenshot(page, "supervision")
    page.goto(scenario.url + "/console/cases")
    assert "已逾期" in page.inner_text("main") and "投标文件雷同" in page.inner_text("main")
    screenshot(page, "cases")


def test_the_statistics_page_draws_the_months_figures_the_api_gives(page: Any, scenario: Scenario) -> None:
    month = datetime.now(PROVINCE_TIME).strftime("%Y-%m")
    with httpx.Client(base_url=scenario.url, timeout=60, auth=SignedRequests(SUPERVISOR)) as api:
        response = api.get("/statistics", params={"month": month})
        assert response.status_code == 200, response.text
        figures = MonthlyStatistics.parse(response.json())
        signals = api.get("/signals").json()
    assert figures.sessions >= 2 and figures.venues, figures  # the scenario's sessions and offers
    sign_in(page, scenario, SUPERVISOR)
    page.get_by_role("link", name="月度统计").first.click()
    assert page.locator("h1").inner_text() == f"月度统计 · {month}"
    for name in ("sessions", "incidents", "objections_filed", "complaints_filed", "misconduct_recorded"):
        assert page.inner_text(f"dd[data-figure={name}]") == str(getattr(figures, name)), name
    for venue in figures.venues:
        row = page.locator(f"tr[data-venue='{venue.venue_id}']")
        for name in ("offered", "confirmed", "declined"):
            assert row.locator(f"[data-figure={name}]").inner_text() == str(getattr(venue, name))
    widths = page.evaluate("[...document.querySelectorAll('tr[data-venue] .bar')].map(b => b.style.width)")
    largest = max(max(v.offered, v.confirmed, v.declined) for v in figures.venues)
    assert "100%" in widths and len(widths) == 3 * len(figures.venues) and largest > 0
    signal_rows = page.locator("table[aria-labelledby=signals-h] tbody tr")
    if signals:
        assert signal_rows.count() == len(signals)
        assert [signal_rows.nth(i).locator("th").inner_text() for i in range(len(signals))] == [
            s["kind"] for s in signals]
    else:
        assert signal_rows.count() == 1 and signal_rows.inner_text() == "无信号"
    screenshot(page, "statistics")
    page.goto(scenario.url + "/console/statistics?month=2026-13")
    assert "YYYY-MM" in page.inner_text("main")


def test_statistics_are_for_supervisors_and_the_province_only(page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, VENUE_KEYS[QD])
    assert page.get_by_role("link", name="月度统计").count() == 0
    response = page.goto(scenario.url + "/console/statistics")
    assert response is not None and response.status == 403


def test_a_genuine_extract_uploads_as_verified_and_a_tampered_one_names_the_failed_check(
        page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, COURT)
    page.set_input_files("#extract", str(scenario.extract))
    page.get_by_role("button", name="上传并核验").click()
    assert page.locator("#verdict").count() == 1, page.inner_text("main")[:600]
    assert page.inner_text("#verdict") == "VERIFIED"
    report = page.frame_locator("iframe.report")
    assert "VERIFIED" in report.locator("body").inner_text()
    screenshot(page, "verify-genuine")
    page.set_input_files("#extract", str(scenario.tampered))
    page.get_by_role("button", name="上传并核验").click()
    assert page.inner_text("#verdict") == "FAILED"
    failures = page.inner_text("#failures")
    assert "members" in failures and scenario.tampered_member in failures, failures
    assert "FAILED" in page.frame_locator("iframe.report").locator("body").inner_text()
    screenshot(page, "verify-tampered")


def test_a_venue_operator_answers_its_offers_and_cannot_open_another_venues_console(
        page: Any, scenario: Scenario) -> None:
    sign_in(page, scenario, VENUE_KEYS[QD])
    main = page.inner_text("main")
    assert scenario.offered_booking in main and "cam1" in main  # its offer; its camera's health
    assert all(expert in main for expert in scenario.draw["assignments"][QD][:1])  # its checked-in expert
    screenshot(page, "venue")
    answer = page.goto(f"{scenario.url}/console/venues/{MAIN}")
    assert answer is not None and answer.status == 403
    assert f"acts only as venue {QD}" in page.inner_text("main")
    assert page.goto(f"{scenario.url}/console/sessions/S-2").status == 403  # offered, not taking part
    page.goto(f"{scenario.url}/console/venues/{QD}")
    page.get_by_role("button", name=re.compile(f"确认.*{scenario.offered_booking}")).click()
    row = page.locator("tr", has_text=scenario.offered_booking)
    assert "已确认" in row.inner_text()  # confirmed
    page.get_by_label("说明").first.fill("3 号摄像机断电")  # an incident at its own venue, through the form
    page.get_by_label("类别").first.select_option("power_failure")
    page.get_by_role("button", name="提交").first.click()
    assert "3 号摄像机断电" in page.inner_text("main")
    reported = [r for r in scenario.st.call("GET", "/sessions/S-1/timeline") if r["type"] == "incident"][-1]
    assert reported["venue_id"] == QD
    assert reported["payload"]["kind"] == "power_failure"


def test_the_public_page_lists_the_project_with_proofs_and_no_personal_data(browser: Any,
                                                                             scenario: Scenario) -> None:
    with browsing(browser, scenario, None) as page:
        page.goto(scenario.url + "/console/public")
        text = page.inner_text("main")
        assert PROJECT in text and "信息公开" in page.inner_text("h1")
        assert "评标结束前密封" in text  # drawn experts stay sealed
        leaked = [value for value in scenario.personal if value in page.content()]
        assert not leaked, leaked
        screenshot(page, "public")
        page.get_by_role("link", name=re.compile("公开证明")).first.click()
        assert "✓ inclusion" in page.inner_text(".findings")
        assert not [value for value in scenario.personal if value in page.content()]
        page.goto(scenario.url + "/console/public?lang=en")
        assert "Public information" in page.inner_text("h1")
        assert page.goto(scenario.url + "/console/supervision").url.rstrip("/").endswith("/console")


PAGES = {
    SUPERVISOR: ["/console/sessions/S-1", "/console/cases", "/console/verify", "/console/statistics",
                 "/console/supervision"],
    VENUE_KEYS[QD]: [f"/console/venues/{QD}"],
    None: ["/console/", "/console/public"],
}


@pytest.mark.parametrize("key", list(PAGES), ids=["supervisor", "venue_operator", "public"])
def test_no_page_scrolls_sideways_on_a_phone(browser: Any, scenario: Scenario, key: Any) -> None:
    with browsing(browser, scenario, key, width=375) as page:
        for path in PAGES[key]:
            page.goto(scenario.url + path)
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{path} is {width[0]}px wide at {width[1]}px"
        screenshot(page, f"{PAGES[key][-1].split('/')[2]}-phone")  # the last page: supervision, venues, public


UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map(e => e.outerHTML.slice(0, 80))"""


@pytest.mark.parametrize("key", list(PAGES), ids=["supervisor", "venue_operator", "public"])
def test_pages_have_a_language_one_heading_labelled_controls_and_a_skip_link_first(
        browser: Any, scenario: Scenario, key: Any) -> None:
    with browsing(browser, scenario, key) as page:
        for path in PAGES[key]:
            page.goto(scenario.url + path)
            assert page.get_attribute("html", "lang") == "zh-CN"
            assert page.locator("h1").count() == 1, path
            assert page.evaluate(UNLABELLED) == [], path
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip", path
