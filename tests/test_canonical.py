"""Canonical JSON: the fast path agrees with the rfc8785 package, and log entries are canonical."""

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from notary.log import Submission
from notary.service import Notary
from tests.conftest import Participants, entry_of, incident
from verifier.canonical import canonical_bytes, reference_canonical_bytes
from verifier.errors import MalformedInput

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_fast_path_equals_rfc8785(value: object) -> None:
    try:
        expected = reference_canonical_bytes(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises(MalformedInput):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


def test_known_tricky_values() -> None:
    for value in [{"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "ö": 7},
                  {"s": "\u0000\u001f\u007f\u2028\"\\/"}, [2**53 - 1, -(2**53 - 1)], {"b": [True, False, None]}]:
        assert canonical_bytes(value) == reference_canonical_bytes(value)
    with pytest.raises(MalformedInput):
        canonical_bytes({"big": 2**64})
    with pytest.raises(MalformedInput):
        canonical_bytes({"bad": "\ud800"})


def test_entries_are_written_in_canonical_form(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    batch = [incident(i) for i in range(5)]
    batch[1]["payload"]["description"] = "断网 \u2028 \"quoted\" \\ tab\t €"
    batch[2]["payload"]["description"] = "\U0001f600 beyond the BMP"
    batch[3]["payload"]["description"] = "\x00record\x00 looks like the slot the log fills with the record"
    sqlite_notary.log.submit(Submission("hub-1", batch, people.hub.sign_batch(batch)))
    for seq in range(5):
        entry = entry_of(sqlite_notary, seq)
        # JSON numbers are IEEE doubles in RFC 8785: parse them as such to re-encode.
        assert reference_canonical_bytes(json.loads(entry, parse_int=float)) == entry
