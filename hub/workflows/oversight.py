"""Statistics and signals for supervisors (四(二) 统计通报, 四(三) 围标串标预警), and the bids they rest on.

Both are computed by `verifier.statistics` and `verifier.signals` over the hub's mirror of the log (its
own records and its devices'), the same code `bidtrace stats` runs over a verified extract, so every
figure and every signal can be recomputed from the evidence alone. A bid is recorded as the bidder sent
it: its document's digest, and its machine code and address as keyed tags under the registry key.
"""

from typing import Any

from sqlalchemy import select

from hub import db
from hub.api.models import BidIn
from hub.errors import Forbidden
from hub.service import Hub
from notary.access import Caller, Role
from verifier.commitments import bid_tag
from verifier.signals import BidSubmission, Signal, bid_rigging_signals
from verifier.statistics import LogRecord, MonthlyStatistics, monthly_statistics


def submit_bid(hub: Hub, session_id: str, body: BidIn, caller: Caller) -> dict[str, Any]:
    p = caller.principal
    if p is None or p.role is not Role.BIDDER:
        raise Forbidden("a bid is submitted by the bidder itself, with its own key")
    keys = hub.linkage_keys
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        if session.project_id not in p.projects:
            raise Forbidden(f"{p.describe()} is not bound to project {session.project_id}")
        key = keys.keys[keys.current]
        bid = BidSubmission(hub.next_id(s, "BID"), p.principal_id, body.document_sha256,
                            bid_tag(key, "device", body.device_fingerprint.strip()),
                            bid_tag(key, "network", body.network_address.strip()), keys.current)
        receipt = hub.write(s, session, "bid_submission", session.main_venue_id, bid.encode())
        s.commit()
        return {**bid.encode(), "leaf_index": receipt.leaf_index}


def mirrored(hub: Hub, project_id: str | None = None) -> list[LogRecord]:
    """The hub's mirror of the log (a project's records, or all but the registry's), as the statistics read it."""
    with hub.db() as s:
        query = select(db.EvidenceRow.leaf_index, db.EvidenceRow.record).where(db.EvidenceRow.project_id != "registry")
        if project_id is not None:
            query = query.where(db.EvidenceRow.project_id == project_id)
        return [(int(leaf), record) for leaf, record in s.execute(query)]


def statistics(hub: Hub, month: str, project_id: str | None = None) -> MonthlyStatistics:
    return monthly_statistics(mirrored(hub, project_id), month)


def signals(hub: Hub, project_id: str | None = None) -> list[Signal]:
    return bid_rigging_signals(mirrored(hub, project_id))
