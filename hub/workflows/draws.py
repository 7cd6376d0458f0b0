"""Verifiable expert draws (专家抽取), replacement draws (补抽), main and secondary venues at once.

1. Commit: the pool (experts matching the criteria, sorted ids, and their digest), the criteria, the
   count, the recusal rules and the recused experts (as a digest), the venue quotas, and SHA-256 of a
   fresh 32-byte secret seed are written as a `draw_commitment` record.
2. Draw: the beacon is the root of the first ledger anchor whose checkpoint covers the commitment leaf
   (`/v1/anchors?after_size=<leaf>&limit=1`): it did not exist when the seed was fixed. The recusals are
   computed again and must equal the committed ones; `verifier.draw.draw` selects, `verifier.draw.assign`
   assigns venues, and the `draw_result` reveals the seed.
3. Replace: experts who are absent or recused are replaced by a new committed draw that continues the
   chain (`replaces_draw`); everyone selected earlier in the chain is excluded (see `verifier.draw`).
4. Schedule (专家预约抽取): a `draw_schedule` record announces a draw's criteria, count and quotas and the
   time `draw_at`; at that time the hub's scheduler, not a person, commits it (naming the schedule) and
   runs it once the commitment is anchored. `verifier.session.draw_schedules_kept` checks both ends.
"""

import hashlib
import secrets
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.api.models import DrawIn, DrawScheduleIn, ReplacementIn
from hub.errors import Conflict, HubError, Invalid
from hub.service import Hub
from hub.workflows.bookings import venues_of
from verifier.draw import DrawError, assign, draw, pool_digest
from verifier.times import parse_time

RULES = {"same_employer": "same employer as a bidder (与投标人同一单位)", "conflicts": "declared or listed conflict"}


def draw_view(d: db.Draw, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "draw_id": d.draw_id, "session_id": d.session_id, "status": d.status, "count": d.count,
        "criteria": d.criteria, "pool_size": len(d.pool), "pool_digest": pool_digest(d.pool),
        "seed_commitment": d.seed_commitment, "commitment_leaf": d.commitment_leaf, "venues": d.venues,
        "replaces_draw": d.replaces_draw, "replaced_experts": d.replaced_experts,
    }
    if d.status == "drawn":
        view.update(beacon=d.beacon, result_leaf=d.result_leaf, selected=d.selected, assignments=d.assignments,
                    excluded=d.excluded)
        if secret:
            view["revealed_seed"] = d.seed_hex
    return view


def _recusals(s: Session, session: db.EvalSession, pool: list[str], same_employer: bool,
              conflicts: list[str]) -> list[str]:
    employers = {b["name"].strip().casefold() for b in session.bidders} if same_employer else set()
    listed = set(conflicts)
    out = []
    for expert in s.scalars(select(db.Expert).where(db.Expert.expert_id.in_(pool))):
        if expert.expert_id in listed or expert.employer.strip().casefold() in employers:
            out.append(expert.expert_id)
    return sorted(out)


def _commit(hub: Hub, s: Session, session: db.EvalSession, pool: list[str], criteria: dict[str, Any], count: int,
            excluded: list[str], conflicts: list[str], same_employer: bool, venues: list[dict[str, Any]] | None,
            earlier: set[str], replaces: str | None = None, replaced: list[str] | None = None,
            schedule_id: str | None = None) -> db.Draw:
    remaining = len(set(pool) - set(excluded) - earlier)
    if count > remaining:
        raise Conflict(f"the draw needs {count} experts but only {remaining} of the {len(pool)} in the pool remain "
                       "after recusal")
    seed = secrets.token_bytes(32)
    draw_id = hub.next_id(s, "D")
    rules = [RULES["conflicts"], *([RULES["same_employer"]] if same_employer else [])]
    payload: dict[str, Any] = {
        "draw_id": draw_id, "pool": pool, "pool_digest": pool_digest(pool), "criteria": criteria, "count": count,
        "recusal_rules": rules, "seed_commitment": hashlib.sha256(seed).hexdigest(),
        "excluded_digest": pool_digest(excluded),
    }
    if venues is not None:
        payload["venues"] = venues
    if replaces is not None:
        payload["replaces_draw"] = replaces
        payload["replaced_experts"] = replaced or []
    if schedule_id is not None:
        payload["schedule_id"] = schedule_id
    receipt = hub.write(s, session, "draw_commitment", session.main_venue_id, payload)
    row = db.Draw(
        draw_id=draw_id, session_id=session.session_id, status="committed", count=count, criteria=criteria,
        pool=pool, excluded=excluded, conflicts=conflicts, same_employer=same_employer, venues=venues,
        seed_hex=seed.hex(),
        seed_commitment=payload["seed_commitment"], commitment_leaf=receipt.leaf_index, replaces_draw=replaces,
        replaced_experts=replaced or [])
    s.add(row)
    return row


Terms = tuple[dict[str, Any], int, list[dict[str, Any]] | None]  # criteria, count, venue quotas


def _terms(s: Session, session: db.EvalSession, body: DrawIn) -> Terms:
    """A draw request's criteria, count and venue quotas as committed, or a clear refusal."""
    criteria = body.criteria.model_dump(exclude_none=True)
    venues = [q.model_dump() for q in body.venues] if body.venues else None
    total = sum(q["count"] for q in venues) if venues else None
    count = body.count or total
    if count is None:
        raise Invalid("give count, or venues with a count each")
    if total is not None and total != count:
        raise Invalid(f"venue counts add up to {total}, not to count {count}")
    if venues:
        allowed = venues_of(s, session)
        for q in venues:
            if q["venue_id"] not in allowed:
                raise Conflict(f"venue {q['venue_id']} has no confirmed booking for session {session.session_id} "
                               f"(its venues: {', '.join(allowed)})")
    return criteria, count, venues


def commit_draw(hub: Hub, session_id: str, body: DrawIn, schedule_id: str | None = None) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        criteria, count, venues = _terms(s, session, body)
        query = select(db.Expert.expert_id).where(db.Expert.active.is_(True),
                                                  db.Expert.specialty == body.criteria.specialty)
        if body.criteria.level:
            query = query.where(db.Expert.level == body.criteria.level)
        pool = sorted(s.scalars(query))
        if not pool:
            raise Conflict(f"no active expert matches the criteria {criteria}")
        excluded = _recusals(s, session, pool, body.same_employer_recusal, list(body.conflicts))
        row = _commit(hub, s, session, pool, criteria, count, excluded, list(body.conflicts),
                      body.same_employer_recusal, venues, set(), schedule_id=schedule_id)
        if schedule_id is not None:  # in the same transaction: a schedule is never committed twice
            schedule = hub.get(s, db.DrawSchedule, schedule_id, "draw schedule")
            schedule.status, schedule.draw_id = "committed", row.draw_id
        s.commit()
        return draw_view(row)


SCHEDULE_HORIZON = timedelta(days=90)


def schedule_view(row: db.DrawSchedule) -> dict[str, Any]:
    return {"schedule_id": row.schedule_id, "session_id": row.session_id, "draw_at": row.draw_at,
            "status": row.status, "schedule_leaf": row.schedule_leaf, "draw_id": row.draw_id, "error": row.error}


def schedule_draw(hub: Hub, session_id: str, body: DrawScheduleIn) -> dict[str, Any]:
    """Announce a draw for `body.draw_at`; the scheduler commits and runs it then (see `run_scheduled`)."""
    draw_at = parse_time(body.draw_at, "draw_at")
    now = hub.now()
    if draw_at <= now:
        raise Invalid(f"draw_at {body.draw_at} is not in the future (it is now {hub.stamp()})")
    if draw_at > now + SCHEDULE_HORIZON:
        raise Invalid(f"draw_at {body.draw_at} is more than {SCHEDULE_HORIZON.days} days ahead")
    request = DrawIn.model_validate(body.model_dump(exclude={"draw_at"})).model_dump(mode="json")
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        criteria, count, venues = _terms(s, session, body)
        schedule_id = hub.next_id(s, "DS")
        payload: dict[str, Any] = {"schedule_id": schedule_id, "draw_at": body.draw_at, "criteria": criteria,
                                   "count": count}
        if venues is not None:
            payload["venues"] = venues
        receipt = hub.write(s, session, "draw_schedule", session.main_venue_id, payload)
        row = db.DrawSchedule(schedule_id=schedule_id, session_id=session_id, draw_at=body.draw_at,
                              due=draw_at.timestamp(), request=request, status="scheduled",
                              schedule_leaf=receipt.leaf_index)
        s.add(row)
        s.commit()
        return schedule_view(row)


def session_schedules(hub: Hub, session_id: str) -> list[dict[str, Any]]:
    with hub.db() as s:
        rows = s.scalars(select(db.DrawSchedule).where(db.DrawSchedule.session_id == session_id)
                         .order_by(db.DrawSchedule.due)).all()
        return [schedule_view(r) for r in rows]


def run_scheduled(hub: Hub) -> None:
    """Commit every scheduled draw that is due, then run each committed one once its commitment is anchored.

    A schedule that cannot be carried out is marked failed with the reason (the verifier reports it too: a
    due schedule without its commitment fails `draw_schedules_kept`)."""
    with hub.db() as s:
        due = [(r.schedule_id, r.session_id, r.status, r.draw_id, r.request) for r in s.scalars(
            select(db.DrawSchedule).where(db.DrawSchedule.status.in_(("scheduled", "committed")),
                                          db.DrawSchedule.due <= time.time()).order_by(db.DrawSchedule.due))]
    for schedule_id, session_id, status, draw_id, request in due:
        try:
            if status == "scheduled":
                draw_id = commit_draw(hub, session_id, DrawIn.model_validate(request), schedule_id)["draw_id"]
            assert draw_id is not None
            with hub.db() as s:
                drawn = hub.get(s, db.Draw, draw_id, "draw").status == "drawn"
            if not drawn:
                execute(hub, draw_id)
        except NotAnchoredYet:
            continue  # the next round tries again
        except HubError as exc:
            _mark(hub, schedule_id, "failed", exc.message)
            continue
        _mark(hub, schedule_id, "drawn", None)


def _mark(hub: Hub, schedule_id: str, status: str, error: str | None) -> None:
    with hub.db() as s:
        row = hub.get(s, db.DrawSchedule, schedule_id, "draw schedule")
        row.status, row.error = status, error
        s.commit()


def _chain(s: Session, d: db.Draw) -> list[db.Draw]:
    """The earlier draws of `d`'s replacement chain, newest first."""
    out: list[db.Draw] = []
    previous = d.replaces_draw
    while previous is not None and len(out) < 1000:
        earlier = s.get(db.Draw, previous)
        if earlier is None:
            break
        out.append(earlier)
        previous = earlier.replaces_draw
    return out


class NotAnchoredYet(Conflict):
    """A draw's commitment is not anchored yet: its beacon does not exist; try again later."""


def _beacon(hub: Hub, leaf: int, draw_id: str) -> bytes:
    deadline = time.monotonic() + hub.config.beacon_wait
    while True:
        anchors = hub.notary_get("/v1/anchors", after_size=leaf, limit=1)
        if anchors:
            return bytes.fromhex(anchors[0]["root"])
        if time.monotonic() > deadline:
            raise NotAnchoredYet(f"the commitment of draw {draw_id} (leaf {leaf}) is not anchored yet; "
                                 "the draw can run once it is, try again")
        time.sleep(0.1)


def execute(hub: Hub, draw_id: str) -> dict[str, Any]:
    with hub.db() as s:
        d: db.Draw = hub.get(s, db.Draw, draw_id, "draw")
        if d.status == "drawn":
            raise Conflict(f"draw {draw_id} was already drawn (result at leaf {d.result_leaf}); a draw runs once")
        leaf = d.commitment_leaf
    beacon = _beacon(hub, leaf, draw_id)  # outside the lock: other work goes on while the ledger anchors
    with hub.lock, hub.db() as s:
        d = hub.get(s, db.Draw, draw_id, "draw")
        if d.status == "drawn":
            raise Conflict(f"draw {draw_id} was already drawn (result at leaf {d.result_leaf}); a draw runs once")
        session = hub.open_session(s, d.session_id)
        same_employer = d.same_employer
        now_excluded = _recusals(s, session, d.pool, same_employer, d.conflicts)
        if now_excluded != d.excluded:
            changed = sorted(set(now_excluded) ^ set(d.excluded))
            raise Conflict(f"the recusals of draw {draw_id} changed since its commitment ({', '.join(changed)}); "
                           "commit a new draw")
        chain = _chain(s, d)
        earlier = {e for c in chain for e in (c.selected or [])}
        try:
            selected = draw(d.pool, d.count, bytes.fromhex(d.seed_hex), beacon, frozenset(d.excluded) | earlier)
        except DrawError as exc:
            raise Conflict(str(exc)) from exc
        assignments = assign(selected, [(q["venue_id"], q["count"]) for q in d.venues]) if d.venues else None
        payload: dict[str, Any] = {
            "draw_id": draw_id, "commitment_leaf": d.commitment_leaf, "beacon": beacon.hex(),
            "revealed_seed": d.seed_hex, "excluded": d.excluded, "selected": selected, "replaces": d.replaces_draw,
        }
        if assignments is not None:
            payload["assignments"] = assignments
        receipt = hub.write(s, session, "draw_result", session.main_venue_id, payload)
        d.status, d.beacon, d.result_leaf = "drawn", beacon.hex(), receipt.leaf_index
        d.selected, d.assignments = selected, assignments
        if d.replaced_experts:
            for sel in s.scalars(select(db.Selection).where(db.Selection.session_id == d.session_id,
                                                            db.Selection.expert_id.in_(d.replaced_experts),
                                                            db.Selection.status == "selected")):
                sel.status = "replaced"
        venue_of = {e: v for v, experts in (assignments or {}).items() for e in experts}
        for expert in selected:
            s.add(db.Selection(session_id=d.session_id, draw_id=draw_id, expert_id=expert,
                               venue_id=venue_of.get(expert, session.main_venue_id), status="selected"))
        s.commit()
        return draw_view(d, secret=True)


def replace(hub: Hub, draw_id: str, body: ReplacementIn) -> dict[str, Any]:
    """Commit a replacement draw (补抽) for absent or recused experts of `draw_id` (the newest of its chain)."""
    with hub.lock, hub.db() as s:
        d: db.Draw = hub.get(s, db.Draw, draw_id, "draw")
        session = hub.open_session(s, d.session_id)
        if d.status != "drawn":
            raise Conflict(f"draw {draw_id} has not been drawn yet; there is nobody to replace")
        later = s.scalars(select(db.Draw.draw_id).where(db.Draw.replaces_draw == draw_id)).first()
        if later is not None:
            raise Conflict(f"draw {draw_id} was already continued by replacement draw {later}; replace through it")
        chain = [d, *_chain(s, d)]
        chain_ids = {c.draw_id for c in chain}
        current = {sel.expert_id: sel for sel in s.scalars(select(db.Selection).where(
            db.Selection.session_id == d.session_id, db.Selection.status == "selected",
            db.Selection.draw_id.in_(chain_ids)))}
        for expert in body.experts:
            if expert not in current:
                raise Conflict(f"expert {expert} is not a current expert of draw {draw_id}'s chain "
                               f"({', '.join(sorted(current)) or 'none'})")
        if len(set(body.experts)) != len(body.experts):
            raise Invalid("experts lists an expert twice")
        quotas: dict[str, int] = {}
        for expert in body.experts:
            quotas[current[expert].venue_id] = quotas.get(current[expert].venue_id, 0) + 1
        venues = [{"venue_id": v, "count": n} for v, n in quotas.items()]
        replaced = [e for v in quotas for e in body.experts if current[e].venue_id == v]  # in assignment order
        conflicts = sorted(set(d.conflicts) | set(body.conflicts))
        same_employer = d.same_employer
        excluded = _recusals(s, session, d.pool, same_employer, conflicts)
        earlier = {e for c in chain for e in (c.selected or [])}
        criteria = {**d.criteria, "replacement_reason": body.reason}
        row = _commit(hub, s, session, d.pool, criteria, len(body.experts), excluded, conflicts, same_employer,
                      venues, earlier, replaces=draw_id, replaced=replaced)
        s.commit()
        return draw_view(row)


def session_experts(hub: Hub, session_id: str) -> list[dict[str, Any]]:
    with hub.db() as s:
        hub.get(s, db.EvalSession, session_id, "session")
        rows = s.scalars(select(db.Selection).where(db.Selection.session_id == session_id)
                         .order_by(db.Selection.id)).all()
        return [{"expert_id": r.expert_id, "venue_id": r.venue_id, "draw_id": r.draw_id, "status": r.status}
                for r in rows]
