"""The expert draw, re-runnable by anyone: which experts a committed draw must select.

The randomness is HMAC-SHA256 keyed by the secret seed (committed before the draw as its SHA-256) over
the beacon (the root of the ledger anchor that first covered the commitment, which did not exist when
the commitment was made) and a counter. Candidates are the committed pool, sorted, minus recused
experts; a Fisher-Yates shuffle driven by that stream picks the first `count`.
"""

import hashlib
import hmac

from verifier.errors import VerificationError


class DrawError(VerificationError):
    """A published draw result is not what the committed draw selects."""


def pool_digest(pool: list[str]) -> str:
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


def verify_draw(
    pool: list[str], committed_digest: str, seed_commitment: str, count: int, revealed_seed: bytes,
    beacon: bytes, excluded: list[str], selected: list[str],
) -> None:
    if pool_digest(pool) != committed_digest:
        raise DrawError("the pool does not match the committed pool digest")
    if hashlib.sha256(revealed_seed).hexdigest() != seed_commitment:
        raise DrawError("the revealed seed does not match the seed committed before the draw")
    expected = draw(pool, count, revealed_seed, beacon, frozenset(excluded))
    if expected != selected:
        raise DrawError(f"the committed draw selects {expected}, the published result is {selected}")
