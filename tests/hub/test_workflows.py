"""Every workflow refuses illegal transitions with a clear error; deadlines raise alarms on schedule."""

import hashlib
import time
from datetime import datetime, timedelta

import httpx

from tests.conftest import wait_until
from tests.hub.conftest import CA, MAIN, QD, SUPERVISOR, TENDERER, YT, Stack, Station, setup_session, sign


def test_booking_transitions_and_double_booking(stack: Stack) -> None:
    st = stack
    bookings = setup_session(st, confirm=False)
    qd, yt = bookings[QD], bookings[YT]
    st.venue(QD).call("POST", f"/bookings/{qd}/decline", {"reason": "room under maintenance"})
    st.venue(QD).refused("POST", f"/bookings/{qd}/confirm", {}, 409, f"booking {qd} was declined; it cannot be "
               "confirmed")
    st.venue(QD).refused("POST", f"/bookings/{yt}/confirm", {}, 403, f"only by {YT}")
    st.venue(YT).call("POST", f"/bookings/{yt}/confirm", {})
    st.venue(YT).refused("POST", f"/bookings/{yt}/confirm", {}, 409, "already confirmed")

    # The same room and an overlapping slot, for another session: refused, naming the booking it clashes with.
    st.call("POST", "/sessions", {"session_id": "S-2", "project_id": "P-2", "main_venue_id": QD, "room": "评标室 2",
                                  "slot_start": "2026-11-26T13:00:00+08:00", "slot_end": "2026-11-26T18:00:00+08:00"})
    st.refused("POST", "/sessions/S-2/offers", {"venue_id": YT, "room": "评标室 1"}, 409,
               f"room '评标室 1' of {YT} is already booked", f"by booking {yt}")
    st.refused("POST", "/sessions", {"session_id": "S-3", "project_id": "P-3", "main_venue_id": MAIN,
                                     "room": "评标室 3", "slot_start": "2026-11-26T08:00:00+08:00",
                                     "slot_end": "2026-11-26T10:00:00+08:00"},
               409, "already booked")
    # Another room, or a slot that does not overlap, is fine; a change is recorded and must be confirmed again.
    other = st.call("POST", "/sessions/S-2/offers", {"venue_id": YT, "room": "评标室 2"}, 201)
    st.venue(YT).call("POST", f"/bookings/{other['booking_id']}/confirm", {})
    changed = st.call("PATCH", f"/bookings/{other['booking_id']}", {"room": "评标室 3", "reason": "larger room"})
    assert changed["status"] == "offered" and [h["action"] for h in changed["history"]] == \
        ["offered", "confirmed", "changed"]
    st.refused("PATCH", f"/bookings/{other['booking_id']}", {"room": "评标室 1"}, 409, "already booked")
    st.call("POST", f"/bookings/{other['booking_id']}/cancel", {"reason": "session moved"})
    st.refused("POST", f"/bookings/{other['booking_id']}/cancel", {}, 409, "already cancelled")
    st.venue(YT).refused("POST", f"/bookings/{other['booking_id']}/confirm", {}, 409,
                         "was cancelled; it cannot be confirmed")
    # Every step is evidence.
    actions = [r["entry"]["record"]["payload"]["action"] for r in st.admin.get("/v1/records", limit=1000)["records"]
               if r["entry"]["record"]["type"] == "booking"]
    assert actions.count("declined") == 1 and actions.count("changed") == 1 and actions.count("cancelled") == 1
    # Clear 4xx for malformed requests and a missing token.
    st.refused("POST", "/sessions", {"session_id": "S-9", "project_id": "P-9", "main_venue_id": MAIN,
                                     "room": "评标室 1",
                                     "slot_start": "2026-11-27T09:00:00", "slot_end": "2026-11-27T12:00:00+08:00"},
               422, "body.slot_start", "UTC offset")
    st.venue(QD).refused("POST", "/bookings/B-404/confirm", {}, 404, "booking B-404 does not exist")
    assert httpx.get(st.url + "/venues", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_objections_misconduct_signatures_and_archive(stack: Stack) -> None:
    st = stack
    setup_session(st)
    d = st.call("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "房屋建筑工程"}, "count": 3}, 201)
    st.refused("POST", f"/draws/{d['draw_id']}/replacements", {"experts": ["E-0001"], "reason": "absent"}, 409,
               "has not been drawn yet")
    drawn = st.call("POST", f"/draws/{d['draw_id']}/execute")
    expert = drawn["selected"][0]

    # Objection: the main venue leads and relays; the tenderer answers only once it is relayed to it; an open
    # one blocks the archive.
    o = st.call("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "评分有误"}, 201)
    st.venue(QD).refused("POST", f"/objections/{o['objection_id']}/review", {}, 403,
               f"led by the main venue {MAIN}")
    st.venue(MAIN).refused("POST", f"/objections/{o['objection_id']}/answer", {"answer": "x"}, 403,
                           "may not answer objection")
    st.as_key(TENDERER).refused("POST", f"/objections/{o['objection_id']}/answer", {"answer": "x"}, 409,
                                "is received")
    st.venue(MAIN).call("POST", f"/objections/{o['objection_id']}/review", {})
    st.refused("POST", "/sessions/S-1/archive", None, 409, f"open objections: {o['objection_id']} (under_review)",
               "cannot be archived")

    # Misconduct: publishing an unverified record is refused; published records name their evidence.
    m = st.call("POST", "/misconduct", {"session_id": "S-1", "subject_kind": "expert", "subject_id": expert,
                                        "description": "评标期间使用手机"}, 201)
    st.refused("POST", f"/misconduct/{m['case_id']}/publish", {}, 409,
               f"misconduct case {m['case_id']} is recorded, not verified; it cannot be published")
    st.refused("POST", f"/misconduct/{m['case_id']}/forward", {"supervisor": "supervisor-1"}, 409, "not published")
    st.call("POST", f"/misconduct/{m['case_id']}/verify", {})
    st.refused("POST", f"/misconduct/{m['case_id']}/publish", {}, 409, "names no evidence")
    st.refused("POST", f"/misconduct/{m['case_id']}/publish", {"evidence": [99_999]}, 422, "evidence leaf 99999")
    published = st.call("POST", f"/misconduct/{m['case_id']}/publish", {"evidence": [drawn["result_leaf"]]})
    assert published["status"] == "published" and published["evidence"] == [drawn["result_leaf"]]

    # Cloud signatures: only verified ones are recorded.
    Station(st, MAIN).check_in("S-1", expert)  # a draw without venue quotas seats everyone at the main venue
    ca, rogue = CA(), CA("Rogue CA")
    st.call("POST", "/trusted-cas", {"pem": ca.pem()})
    report = hashlib.sha256(b"report").hexdigest()
    key, cert = ca.issue("expert")
    body = {"expert_id": expert, "document_sha256": report, "certificate_pem": cert}
    other = hashlib.sha256(b"another report").hexdigest()
    st.refused("POST", "/sessions/S-1/signatures", {**body, "signature": sign(key, other)}, 422,
               "signature does not verify")
    rogue_key, rogue_cert = rogue.issue("expert")
    st.refused("POST", "/sessions/S-1/signatures", {**body, "certificate_pem": rogue_cert,
                                                    "signature": sign(rogue_key, report)}, 422,
               "not issued by a trusted CA")
    st.refused("POST", "/sessions/S-1/signatures", {**body, "certificate_pem": "junk", "signature": "00" * 20}, 422,
               "not a PEM X.509 certificate")
    absent = drawn["selected"][1]
    st.refused("POST", "/sessions/S-1/signatures", {**body, "expert_id": absent, "signature": sign(key, report)},
               409, f"expert {absent} has not checked in")
    st.call("POST", "/sessions/S-1/signatures", {**body, "signature": sign(key, report)}, 201)
    st.call("POST", "/sessions/S-1/fees", {"expert_id": expert, "amount_fen": 80_000, "payer": "省中心"}, 201)
    st.refused("POST", "/sessions/S-1/fees", {"expert_id": expert, "amount_fen": 80_000, "payer": "省中心"}, 409,
               "already paid")

    # A main-venue switch moves the lead of open objections.
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "power_failure", "description": "主场停电",
                                                "started_at": "2026-11-26T11:00:00+08:00"}, 201)
    st.refused("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "main_venue_switch", "description": "x",
                                                   "started_at": "2026-11-26T11:01:00+08:00",
                                                   "new_main_venue_id": "V-NOWHERE"}, 409, "cannot become the main")
    st.call("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "main_venue_switch",
                                                "description": "主场切换至青岛",
                                                "started_at": "2026-11-26T11:02:00+08:00",
                                                "new_main_venue_id": QD}, 201)
    relay = {"to": [TENDERER.principal_id, SUPERVISOR.principal_id]}
    st.venue(MAIN).refused("POST", f"/objections/{o['objection_id']}/relay", relay, 403, f"{QD}")
    st.venue(QD).call("POST", f"/objections/{o['objection_id']}/relay", relay)
    st.as_key(TENDERER).call("POST", f"/objections/{o['objection_id']}/answer", {"answer": "维持原结果"})
    st.refused("POST", f"/objections/{o['objection_id']}/withdraw", {}, 409, "is answered")
    archived = st.call("POST", "/sessions/S-1/archive", None, 201)
    assert drawn["result_leaf"] in archived["leaves"]
    st.refused("POST", "/sessions/S-1/archive", None, 409, "was archived")
    timeline = st.call("GET", "/sessions/S-1/timeline")
    assert [t["payload"]["kind"] for t in timeline if t["type"] == "incident"] == ["power_failure", "main_venue_switch"]


def test_overdue_objection_raises_an_alarm(stack: Stack) -> None:
    st = stack
    setup_session(st)
    soon = (datetime.now().astimezone() + timedelta(seconds=1)).isoformat(timespec="seconds")
    o = st.call("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "质疑", "deadline": soon}, 201)
    later = (datetime.now().astimezone() + timedelta(days=3)).isoformat(timespec="seconds")
    st.call("POST", "/sessions/S-1/objections", {"filed_by": "另一投标人", "summary": "质疑", "deadline": later}, 201)
    wait_until(lambda: st.call("GET", "/alarms"), 15, "the deadline alarm")
    alarms = st.call("GET", "/alarms")
    assert [a["objection_id"] for a in alarms] == [o["objection_id"]]
    leaf = alarms[0]["leaf_index"]
    record = st.admin.get(f"/v1/records/{leaf}")["entry"]["record"]
    assert record["type"] == "objection" and record["payload"]["alarm"] == "deadline_missed"
    assert st.call("GET", f"/objections/{o['objection_id']}")["overdue"] is True
    # One alarm only, however often the schedule runs.
    time.sleep(1.0)  # the deadline job runs every 0.2 s
    assert len([r for r in st.admin.get("/v1/records", limit=1000)["records"]
                if r["entry"]["record"]["payload"].get("alarm")]) == 1
