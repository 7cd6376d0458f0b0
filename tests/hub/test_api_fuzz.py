"""Property-based fuzzing of the hub's published API (schemathesis against its /openapi.json), anonymous
and signed by a principal allowed to call each operation, against a hub with a real session and a real
notary behind it: no 5xx, ever (a 502 would mean the hub built evidence the notary refused)."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import send_signed
from tests.hub.conftest import MAIN, OPERATOR, VENUE_KEYS, Stack, setup_session

schema = schemathesis.pytest.from_fixture("hub_schema")


@pytest.fixture
def session_stack(stack: Stack) -> Iterator[Stack]:
    setup_session(stack)
    yield stack


@pytest.fixture
def hub_schema(session_stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(session_stack.url + "/openapi.json")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_hub_fail(case: schemathesis.Case, session_stack: Stack) -> None:  # type: ignore[type-arg]
    where = f"{case.method} {case.formatted_path}"
    anonymous = case.call(timeout=60)
    assert anonymous.status_code < 500, f"{where}: {anonymous.status_code} {anonymous.text[:300]}"
    venue_acts = case.path in ("/bookings/{booking_id}/{action}", "/objections/{objection_id}/{action}")
    signed = send_signed(case, session_stack.url, VENUE_KEYS[MAIN] if venue_acts else OPERATOR)
    assert signed.status_code < 500, f"{where} signed: {signed.status_code} {signed.text[:300]}"
    assert "does not verify" not in signed.text, f"{where}: {signed.text[:300]}"
