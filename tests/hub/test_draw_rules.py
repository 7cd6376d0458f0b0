"""The draw rules the verifier re-runs: venue assignment, committed recusals, replacement chains."""

import hashlib

import pytest

from verifier.draw import DrawError, assign, draw, pool_digest, verify_draw

POOL = [f"E-{i:03d}" for i in range(1, 31)]
SEED, BEACON = bytes(range(32)), hashlib.sha256(b"anchored root").digest()


def _verify(selected: list[str], **kw: object) -> None:
    verify_draw(POOL, pool_digest(POOL), hashlib.sha256(SEED).hexdigest(), len(selected), SEED, BEACON, ["E-001"],
                selected, **kw)  # type: ignore[arg-type]


def test_assignment_follows_draw_order_and_is_checked() -> None:
    selected = draw(POOL, 5, SEED, BEACON, frozenset({"E-001"}))
    venues = [("V-MAIN", 3), ("V-2", 2)]
    assert assign(selected, venues) == {"V-MAIN": selected[:3], "V-2": selected[3:]}
    _verify(selected, venues=venues, assignments=assign(selected, venues), excluded_digest=pool_digest(["E-001"]))
    swapped = {"V-MAIN": selected[2:5], "V-2": selected[:2]}
    with pytest.raises(DrawError, match="assigns"):
        _verify(selected, venues=venues, assignments=swapped)
    with pytest.raises(DrawError, match="recusals"):
        _verify(selected, excluded_digest=pool_digest(["E-002"]))


def test_replacement_excludes_everyone_drawn_before() -> None:
    first = draw(POOL, 5, SEED, BEACON, frozenset({"E-001"}))
    seed2, beacon2 = bytes(32), hashlib.sha256(b"later root").digest()
    replacement = draw(POOL, 1, seed2, beacon2, frozenset({"E-001", *first}))
    assert replacement[0] not in first
    args = (POOL, pool_digest(POOL), hashlib.sha256(seed2).hexdigest(), 1, seed2, beacon2, ["E-001"])
    verify_draw(*args, replacement, earlier=first)
    # A replacement that ignores the earlier selections (and so may re-draw one of them) is not reproducible.
    unconstrained = draw(POOL, 1, seed2, beacon2, frozenset({"E-001"}))
    if unconstrained != replacement:
        with pytest.raises(DrawError, match="committed draw selects"):
            verify_draw(*args, unconstrained, earlier=first)
    with pytest.raises(DrawError):
        verify_draw(*args, [first[0]], earlier=first)
