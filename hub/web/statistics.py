"""The supervisors' statistics page (四(二)): a month's bookings offered, confirmed and declined per venue,
sessions per month over the past year, incidents, objections, complaints and misconduct cases, and the first
bid-rigging signals (四(三)), each with the leaves it rests on.

The figures are `hub.workflows.oversight`'s, the same `verifier.statistics` and `verifier.signals` code that
`GET /statistics`, `GET /signals` and `bidtrace stats` on an extract run; this page only draws them (tables,
and bars whose length is the count)."""

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.api.deps import get_hub, permit
from hub.errors import Invalid
from hub.web.pages import render, signed_in
from hub.workflows import oversight
from verifier.errors import MalformedInput
from verifier.signals import bid_rigging_signals
from verifier.statistics import PROVINCE_TIME, check_month, monthly_statistics

router = APIRouter()
MONTHS_SHOWN = 12
BOOKING_COLUMNS = ("offered", "confirmed", "declined")


@dataclass(frozen=True)
class Bar:
    """One count and its bar's length, in per cent of the largest count it is drawn with."""

    label: str
    count: int
    percent: int


def bars(counts: list[tuple[str, int]]) -> list[Bar]:
    largest = max((n for _, n in counts), default=0)
    return [Bar(label, n, round(100 * n / largest) if largest else 0) for label, n in counts]


def months_before(month: str, n: int) -> list[str]:
    """`n` months ending with `month`, oldest first (YYYY-MM)."""
    year, number = int(month[:4]), int(month[5:])
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{number:02d}")
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
    return out[::-1]


@router.get("/statistics", name="statistics")
def statistics(request: Request, month: str | None = None) -> HTMLResponse:
    session = signed_in(request)
    permit(session.caller, "read_statistics")
    hub = get_hub(request)
    month = month or datetime.now(PROVINCE_TIME).strftime("%Y-%m")
    try:
        check_month(month)
    except MalformedInput as exc:
        raise Invalid(str(exc)) from exc
    records = oversight.mirrored(hub)  # read once for the month, the year's sessions and the signals
    figures = monthly_statistics(records, month)
    per_month = [(m, monthly_statistics(records, m).sessions) for m in months_before(month, MONTHS_SHOWN)]
    # One scale for the three columns, so that bars of offers, confirmations and declines compare.
    drawn = bars([(f"{v.venue_id} {name}", getattr(v, name)) for v in figures.venues for name in BOOKING_COLUMNS])
    venues = [(v.venue_id, list(zip(BOOKING_COLUMNS, drawn[i * 3:i * 3 + 3], strict=True)))
              for i, v in enumerate(figures.venues)]
    return render(request, "statistics.html.j2", session, month=month, figures=figures, venues=venues,
                  sessions_per_month=bars(per_month), signals=bid_rigging_signals(records))
