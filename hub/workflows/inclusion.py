"""Every receipt the hub holds is checked against the notary's word: its leaf must be in a later signed
checkpoint, consistent with every checkpoint the hub saw before (`NotaryClient.check_included`, RFC 9162).

One round (the `inclusion` job): the mirrored leaves not yet confirmed, oldest first; the notary's newest
checkpoint, fetched once and checked for consistency with the largest one the hub kept (across restarts);
one inclusion proof per leaf the checkpoint covers. A leaf found is `confirmed`. A leaf the checkpoint covers
but does not include, or a checkpoint on another history than the one seen before, is `broken`: the notary
acknowledged evidence and then lost it, or shows different histories to different people. A broken receipt is
a supervisors' alarm naming the leaf and the receipt (`hub.workflows.alarms`); so is a receipt that is still
not in a checkpoint after the log's maximum merge delay. Nothing is deleted: the receipt stays in the mirror
as the notary's signed promise.
"""

import logging

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.errors import NotaryUnavailable
from hub.service import Hub
from notary.client import BrokenPromise, NotaryError
from verifier.errors import VerificationError
from verifier.receipt import Receipt

log = logging.getLogger("bidtrace.hub.inclusion")
ROUND = 500  # leaves checked per round at most


def unconfirmed(s: Session, limit: int = ROUND) -> list[db.EvidenceRow]:
    """Mirrored leaves whose inclusion is not yet confirmed nor found broken, in leaf order."""
    checked = select(db.InclusionCheck.leaf_index)
    return list(s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.leaf_index.not_in(checked))
                          .order_by(db.EvidenceRow.leaf_index).limit(limit)))


def confirm_receipts(hub: Hub) -> int:
    """One round; return how many receipts it confirmed. Raises NotaryUnavailable if the notary cannot be
    asked (the next round tries again)."""
    with hub.db() as s:
        rows = unconfirmed(s)
        kept = s.scalars(select(db.SeenCheckpoint).order_by(db.SeenCheckpoint.size.desc())).first()
        kept_note = kept.note if kept is not None else None
    if not rows:
        return 0
    client = hub.notary
    try:
        if kept_note is not None:
            client.saw(kept_note)
        checkpoint = client.newest_checkpoint()
    except BrokenPromise as exc:  # no receipt can be confirmed against a forked history
        _record(hub, [(row, 0, exc.detail) for row in rows], [])
        return 0
    except (NotaryError, httpx.HTTPError) as exc:
        raise NotaryUnavailable(f"the notary's checkpoint cannot be read to check receipts: {exc}") from exc
    broken: list[tuple[db.EvidenceRow, int, str]] = []
    confirmed: list[db.EvidenceRow] = []
    for row in rows:
        try:
            receipt = Receipt.parse(row.receipt, f"the hub's copy of the receipt of leaf {row.leaf_index}")
        except VerificationError as exc:
            broken.append((row, checkpoint.size, f"the hub holds a malformed receipt: {exc}"))
            continue
        if receipt.leaf_index >= checkpoint.size:
            break  # this leaf and the later ones: the next round
        try:
            client.check_included(receipt, checkpoint)
        except BrokenPromise as exc:
            broken.append((row, checkpoint.size, exc.detail))
            continue
        except (NotaryError, httpx.HTTPError) as exc:
            _record(hub, broken, confirmed, checkpoint.size)
            raise NotaryUnavailable(f"the notary cannot prove leaf {row.leaf_index}'s inclusion now: {exc}") from exc
        confirmed.append(row)
    _record(hub, broken, confirmed, checkpoint.size)
    return len(confirmed)


def _record(hub: Hub, broken: list[tuple[db.EvidenceRow, int, str]], confirmed: list[db.EvidenceRow],
            size: int = 0) -> None:
    now = hub.stamp()
    with hub.lock, hub.db() as s:
        for row, at, detail in broken:
            log.error("the notary broke its promise for leaf %d (%s, leaf hash %s): %s",
                      row.leaf_index, row.type, row.leaf_hash, detail)
            s.merge(db.InclusionCheck(leaf_index=row.leaf_index, status="broken", checkpoint_size=at, detail=detail,
                                      checked_at=now))
        for row in confirmed:
            s.merge(db.InclusionCheck(leaf_index=row.leaf_index, status="confirmed", checkpoint_size=size,
                                      detail=None, checked_at=now))
        note, seen = hub.notary.seen_note, hub.notary.seen
        if note is not None and seen is not None:
            kept = s.get(db.SeenCheckpoint, seen.origin)
            if kept is None or kept.size < seen.size:
                s.merge(db.SeenCheckpoint(origin=seen.origin, size=seen.size, note=note))
        s.commit()
