"""信息公开: what of a project may be public. Built field by field from an allow-list, so personal data
(names, identity numbers, who filed an objection), commitment openings and secrets (draw seeds, salts,
subscription secrets) cannot appear: only ids, venues, rooms, slots, statuses, digests and leaf numbers.
A draw's seed is public in its revealed result record; this endpoint leaves it to the log."""

from typing import Any

from sqlalchemy import select

from hub import db
from hub.errors import NotFound
from hub.service import Hub
from hub.workflows.cases import public_case
from verifier.draw import pool_digest


def disclosure(hub: Hub, project_id: str) -> dict[str, Any]:
    with hub.db() as s:
        sessions = s.scalars(select(db.EvalSession).where(db.EvalSession.project_id == project_id)
                             .order_by(db.EvalSession.session_id)).all()
        if not sessions:
            raise NotFound(f"project {project_id} has no sessions on this hub")
        out = []
        for session in sessions:
            bookings = s.scalars(select(db.Booking).where(db.Booking.session_id == session.session_id)
                                 .order_by(db.Booking.booking_id)).all()
            draws = s.scalars(select(db.Draw).where(db.Draw.session_id == session.session_id)
                              .order_by(db.Draw.commitment_leaf)).all()
            out.append({
                "session_id": session.session_id, "main_venue_id": session.main_venue_id, "status": session.status,
                "slot_start": session.slot_start, "slot_end": session.slot_end, "archive_leaf": session.archive_leaf,
                "bookings": [{"booking_id": b.booking_id, "venue_id": b.venue_id, "room": b.room,
                              "slot_start": b.slot_start, "slot_end": b.slot_end, "status": b.status}
                             for b in bookings],
                "draws": [_draw(d, sealed=session.status != "archived") for d in draws],
            })
        cases = s.scalars(select(db.MisconductCase).where(
            db.MisconductCase.project_id == project_id,
            db.MisconductCase.status.in_(("published", "forwarded"))).order_by(db.MisconductCase.case_id)).all()
        return {
            "project_id": project_id,
            "sessions": out,
            "misconduct": [public_case(m) for m in cases],
        }


def _draw(d: db.Draw, sealed: bool) -> dict[str, Any]:
    """Who was drawn stays sealed until the session's evaluation ends (it is archived)."""
    view: dict[str, Any] = {"draw_id": d.draw_id, "status": d.status, "count": d.count,
                            "criteria": {k: v for k, v in d.criteria.items() if k in ("specialty", "level")},
                            "pool_size": len(d.pool), "pool_digest": pool_digest(d.pool),
                            "commitment_leaf": d.commitment_leaf, "replaces_draw": d.replaces_draw}
    if d.status == "drawn" and sealed:
        view.update(result_leaf=d.result_leaf, experts="sealed until the evaluation ends")
    elif d.status == "drawn":
        view.update(result_leaf=d.result_leaf, selected=d.selected, assignments=d.assignments,
                    replaced_experts=d.replaced_experts)
    return view
