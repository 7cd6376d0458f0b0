"""The supervision feed (推送至省云智监管平台): every evidence event of a project, to each subscriber, in order.

1. Tail: the hub reads the notary's log in order (`/v1/records?after=`) and mirrors the records of the
   projects it coordinates, its own and the devices', with their receipts. The cursor is the last leaf read.
2. Fan out: mirrored records up to the cursor, in leaf order, become one outbox row per active subscriber
   of the project (a new subscriber first gets the project's earlier events). Outbox rows are durable.
3. Deliver: per subscriber, the oldest undelivered row is POSTed (JSON body; header
   `X-Bidtrace-Signature: sha256=<hex HMAC-SHA256(secret, body)>`); only a 2xx answer moves on to the next,
   so delivery is in order. A failure backs off (doubling, capped) and retries the same row. Delivery is
   at least once: a receiver deduplicates by (subscription_id, sequence).
"""

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.api.models import SubscriptionIn
from hub.errors import Forbidden, NotaryUnavailable, NotFound
from hub.service import Hub
from notary.access import Caller, Role
from verifier.errors import VerificationError
from verifier.receipt import Receipt

PAGE = 500
MAX_PAGES_PER_TICK = 20
MAX_DELIVERIES_PER_TICK = 200


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _cursor(s: Session) -> db.State:
    row = s.get(db.State, "tail_cursor")
    if row is None:
        row = db.State(key="tail_cursor", value=-1)
        s.add(row)
    return row


def tail(hub: Hub) -> int:
    """Mirror new leaves of the hub's projects; return how many leaves were read."""
    read = 0
    for _ in range(MAX_PAGES_PER_TICK):
        with hub.db() as s:
            after = _cursor(s).value
            projects = hub.projects(s)
        page = hub.notary_get("/v1/records", after=after, limit=PAGE)["records"]
        if not page:
            break
        with hub.lock, hub.db() as s:
            for r in page:
                record = r["entry"]["record"]
                leaf = int(r["leaf_index"])
                if record.get("project_id") not in projects or s.get(db.EvidenceRow, leaf) is not None:
                    continue
                receipt = _receipt(hub, leaf, hub.notary_get(f"/v1/records/{leaf}/receipt"))
                s.add(db.EvidenceRow(
                    leaf_index=leaf, project_id=record["project_id"], session_id=record["session_id"],
                    type=record["type"], occurred_at=record["occurred_at"], leaf_hash=r["leaf_hash"], record=record,
                    receipt=receipt.encode(), fanned_out=False))
            _cursor(s).value = int(page[-1]["leaf_index"])
            s.commit()
        read += len(page)
        if len(page) < PAGE:
            break
    fan_out(hub)
    return read


def _receipt(hub: Hub, leaf: int, answer: Any) -> Receipt:
    """The notary's receipt of a mirrored leaf, read strictly and checked against its key (a receipt the hub
    keeps is the notary's word, or the hub does not keep it)."""
    try:
        receipt = Receipt.parse(answer, f"the notary's receipt of leaf {leaf}")
        receipt.verify(*hub.notary.notary_identity())
    except VerificationError as exc:
        raise NotaryUnavailable(f"the notary's receipt of leaf {leaf} does not hold: {exc}") from exc
    if receipt.leaf_index != leaf:
        raise NotaryUnavailable(f"the notary answered the receipt of leaf {receipt.leaf_index} for leaf {leaf}")
    return receipt


def _enqueue(s: Session, sub: db.Subscription, leaf: int) -> None:
    sub.queued += 1
    s.add(db.Outbox(subscription_id=sub.subscription_id, sequence=sub.queued, leaf_index=leaf, delivered=False,
                    attempts=0, next_attempt=0.0))


def fan_out(hub: Hub) -> int:
    with hub.lock, hub.db() as s:
        cursor = _cursor(s).value
        rows = s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.fanned_out.is_(False),
                                                      db.EvidenceRow.leaf_index <= cursor)
                         .order_by(db.EvidenceRow.leaf_index).limit(5000)).all()
        subs: dict[str, list[db.Subscription]] = {}
        for row in rows:
            if row.project_id not in subs:
                subs[row.project_id] = list(s.scalars(select(db.Subscription).where(
                    db.Subscription.project_id == row.project_id, db.Subscription.active.is_(True))))
            for sub in subs[row.project_id]:
                _enqueue(s, sub, row.leaf_index)
            row.fanned_out = True
        s.commit()
        return len(rows)


def subscription_view(sub: db.Subscription) -> dict[str, Any]:
    return {"subscription_id": sub.subscription_id, "project_id": sub.project_id, "url": sub.url,
            "active": sub.active, "queued": sub.queued, "delivered": sub.delivered}


def registered_endpoints(hub: Hub, caller: Caller) -> set[str]:
    """Where `caller` may have events pushed: its own registered endpoints if a supervisor; any supervisor's
    if the province (hub operator). Nothing else, so the hub never calls an address an attacker chose."""
    if caller.principal is not None and caller.principal.role is Role.SUPERVISOR:
        return set(caller.principal.endpoints)
    return {url for p in hub.principals.all() if p.role is Role.SUPERVISOR for url in p.endpoints}


def subscribe(hub: Hub, body: SubscriptionIn, caller: Caller) -> dict[str, Any]:
    endpoints = registered_endpoints(hub, caller)
    if body.url not in endpoints:
        raise Forbidden(f"{body.url} is not a registered supervisor endpoint"
                        f"{' of ' + caller.name if caller.principal else ''}; webhooks go only to endpoints "
                        "registered in the hub's access configuration")
    with hub.lock, hub.db() as s:
        sub = db.Subscription(subscription_id=hub.next_id(s, "SUB"), project_id=body.project_id, url=body.url,
                              secret=body.secret, active=True, queued=0, delivered=0, owner=caller.name)
        s.add(sub)
        for row in s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.project_id == body.project_id,
                                                          db.EvidenceRow.fanned_out.is_(True))
                             .order_by(db.EvidenceRow.leaf_index)):
            _enqueue(s, sub, row.leaf_index)
        s.commit()
        return subscription_view(sub)


def _check_owner(sub: db.Subscription, caller: Caller) -> None:
    """A supervisor's subscription is its own business: another supervisor may neither read where it points
    and how its deliveries fail nor cancel it. The province (hub operator) manages them all."""
    p = caller.principal
    if p is not None and p.role is Role.SUPERVISOR and sub.owner != p.principal_id:
        raise Forbidden(f"{p.describe()} may not see or cancel subscription {sub.subscription_id}: "
                        "it belongs to another subscriber")


def unsubscribe(hub: Hub, subscription_id: str, caller: Caller) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        sub: db.Subscription = hub.get(s, db.Subscription, subscription_id, "subscription")
        _check_owner(sub, caller)
        sub.active = False
        s.commit()
        return subscription_view(sub)


def subscription(hub: Hub, subscription_id: str, caller: Caller) -> dict[str, Any]:
    with hub.db() as s:
        sub = s.get(db.Subscription, subscription_id)
        if sub is None:
            raise NotFound(f"subscription {subscription_id} does not exist")
        _check_owner(sub, caller)
        pending = s.scalars(select(db.Outbox).where(db.Outbox.subscription_id == subscription_id,
                                                    db.Outbox.delivered.is_(False)).order_by(db.Outbox.id)).first()
        view = subscription_view(sub)
        view["next"] = None if pending is None else {"sequence": pending.sequence, "leaf_index": pending.leaf_index,
                                                     "attempts": pending.attempts, "last_error": pending.last_error}
        return view


def _body(sub: db.Subscription, item: db.Outbox, row: db.EvidenceRow) -> bytes:
    event = {"subscription_id": sub.subscription_id, "sequence": item.sequence, "project_id": row.project_id,
             "leaf_index": row.leaf_index, "leaf_hash": row.leaf_hash, "receipt": row.receipt, "record": row.record}
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def deliver(hub: Hub, client: httpx.Client) -> int:
    """One delivery round over all active subscribers; return how many events were delivered."""
    delivered = 0
    with hub.db() as s:
        subs = list(s.scalars(select(db.Subscription.subscription_id).where(db.Subscription.active.is_(True))))
    for sub_id in subs:
        for _ in range(MAX_DELIVERIES_PER_TICK):
            with hub.db() as s:
                sub = s.get(db.Subscription, sub_id)
                item = s.scalars(select(db.Outbox).where(db.Outbox.subscription_id == sub_id,
                                                         db.Outbox.delivered.is_(False))
                                 .order_by(db.Outbox.id).limit(1)).first()
                if sub is None or not sub.active or item is None or item.next_attempt > time.time():
                    break
                row = s.get(db.EvidenceRow, item.leaf_index)
                if row is None:
                    break
                body = _body(sub, item, row)
                error = None
                try:
                    response = client.post(sub.url, content=body, headers={
                        "content-type": "application/json", "X-Bidtrace-Signature": signature(sub.secret, body),
                        "X-Bidtrace-Subscription": sub.subscription_id, "X-Bidtrace-Sequence": str(item.sequence)})
                    if not 200 <= response.status_code < 300:
                        error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if error is None:
                    item.delivered, item.last_error = True, None
                    sub.delivered += 1
                    delivered += 1
                else:
                    item.attempts += 1
                    item.last_error = error
                    delay = min(hub.config.retry_base * 2 ** (item.attempts - 1), hub.config.retry_max)
                    item.next_attempt = time.time() + delay
                s.commit()
                if error is not None:
                    break
    return delivered
