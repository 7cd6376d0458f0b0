"""The expert draw, re-runnable by anyone: which experts a committed draw must select.

The randomness is HMAC-SHA256 keyed by the secret seed (committed before the draw as its SHA-256) over
the beacon (the root of the ledger anchor that first covered the commitment, which did not exist when
the commitment was made) and a counter. Candidates are the committed pool, sorted, minus recused
experts; a Fisher-Yates shuffle driven by that stream picks the first `count`.

Recusals (回避). When the commitment carries `excluded_digest`, the recused experts were fixed before the
beacon existed: the published `excluded` list must have that digest (`pool_digest` of the list).

Main and secondary venues at once (主副场专家一次抽取). When the commitment carries `venues` (a list of
venue id and count, adding up to `count`), the selection is assigned to venues in the order drawn: the
first `count₁` selected experts go to the first listed venue, the next `count₂` to the second, and so on.
The order of the selection is the Fisher-Yates order, so the assignment is as random as the selection and
as reproducible.

Replacement draws (补抽). A replacement for absent or recused experts is a draw of its own, with its own
commitment (new secret seed, same pool) anchored before its own beacon. Its commitment names
`replaces_draw` (the latest draw of the chain it continues) and `replaced_experts`. To re-run it, the
verifier follows `replaces_draw` back to the original draw and collects every expert selected by an
earlier draw of the chain (each of whose results must have been logged before the replacement's
commitment); those experts are excluded in addition to the replacement's own `excluded` list, so nobody
drawn before (in particular the replaced experts) can be drawn again, and the replacement cannot be
steered by choosing which earlier experts to keep. The candidates are then
`sorted(pool) - excluded - earlier selections`, and the same shuffle picks `count` experts.
"""

import hashlib
import hmac
from collections.abc import Iterable

from verifier.errors import VerificationError


class DrawError(VerificationError):
    """A published draw result is not what the committed draw selects."""


def pool_digest(pool: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(pool)).encode()).hexdigest()


def _uniform(seed: bytes, beacon: bytes, counter: int, bound: int) -> int:
    # Rejection sampling keeps every candidate equally likely.
    limit = (1 << 256) - (1 << 256) % bound
    while True:
        block = hmac.new(seed, beacon + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        value = int.from_bytes(block, "big")
        counter += 1
        if value < limit:
            return value % bound


def draw(pool: list[str], count: int, seed: bytes, beacon: bytes, excluded: frozenset[str] = frozenset()) -> list[str]:
    candidates = sorted(set(pool) - excluded)
    if count > len(candidates):
        raise DrawError(f"draw needs {count} experts but only {len(candidates)} candidates remain after recusal")
    for i in range(count):
        j = i + _uniform(seed, beacon, i << 32, len(candidates) - i)
        candidates[i], candidates[j] = candidates[j], candidates[i]
    return candidates[:count]


def assign(selected: list[str], venues: list[tuple[str, int]]) -> dict[str, list[str]]:
    """Assign experts to venues in the order drawn: the first count₁ to the first venue, and so on."""
    if sum(n for _, n in venues) != len(selected):
        raise DrawError(f"venue counts add up to {sum(n for _, n in venues)}, the draw selected {len(selected)}")
    assigned: dict[str, list[str]] = {}
    at = 0
    for venue, n in venues:
        if venue in assigned:
            raise DrawError(f"venue {venue} is listed twice in the commitment")
        assigned[venue] = selected[at:at + n]
        at += n
    return assigned


def verify_draw(
    pool: list[str], committed_digest: str, seed_commitment: str, count: int, revealed_seed: bytes,
    beacon: bytes, excluded: list[str], selected: list[str], *, excluded_digest: str | None = None,
    earlier: Iterable[str] = (), venues: list[tuple[str, int]] | None = None,
    assignments: dict[str, list[str]] | None = None,
) -> None:
    """Re-run a committed draw and compare. `earlier` are the experts selected by earlier draws of a
    replacement chain (excluded too); `venues`/`assignments` check a main-and-secondary draw."""
    if pool_digest(pool) != committed_digest:
        raise DrawError("the pool does not match the committed pool digest")
    if hashlib.sha256(revealed_seed).hexdigest() != seed_commitment:
        raise DrawError("the revealed seed does not match the seed committed before the draw")
    if excluded_digest is not None and pool_digest(excluded) != excluded_digest:
        raise DrawError("the published recusals are not the ones committed before the draw")
    expected = draw(pool, count, revealed_seed, beacon, frozenset(excluded) | frozenset(earlier))
    if expected != selected:
        raise DrawError(f"the committed draw selects {expected}, the published result is {selected}")
    if venues is not None:
        if assignments is None:
            raise DrawError("the commitment assigns experts to venues but the result publishes no assignment")
        wanted = assign(selected, venues)
        if wanted != assignments:
            raise DrawError(f"the committed draw assigns {wanted}, the published assignment is {assignments}")
    elif assignments is not None:
        raise DrawError("the result assigns venues that the commitment did not name")
