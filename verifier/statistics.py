"""Monthly statistics of remote evaluation (四(二) 统计通报), computed from log records alone.

One function serves the hub (over its mirror of the log) and `bidtrace stats` (over the verified records
of an extract), so a figure the province reports can be recomputed by anyone holding the extract. A
record counts in the month of its `occurred_at` in China Standard Time (UTC+8, the province's clock).
What is counted: per venue, bookings offered, confirmed and declined (要约发起和确认); sessions opened
(a main venue's `reserved` booking); incidents reported (first record of each); objections filed,
relayed and answered by the tenderer; complaints filed; misconduct cases recorded. Reads (`access`
records) and `registry` changes are not counted.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from verifier.errors import MalformedInput
from verifier.strict import count, exact_object, listed, text

PROVINCE_TIME = timezone(timedelta(hours=8))
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
LogRecord = tuple[int, Mapping[str, Any]]  # leaf index and record
# Reads and registry changes are not evaluation work; a read is also often the newest, not yet anchored, record.
NOT_COUNTED = frozenset({"access", "registry"})


def month_of(record: Mapping[str, Any]) -> str | None:
    """YYYY-MM of the record's `occurred_at` in the province's time; None when it is no time with offset."""
    try:
        at = datetime.fromisoformat(str(record.get("occurred_at")))
    except ValueError:
        return None
    return at.astimezone(PROVINCE_TIME).strftime("%Y-%m") if at.tzinfo is not None else None


def check_month(month: str) -> str:
    if not MONTH.fullmatch(month):
        raise MalformedInput(f"a month is written YYYY-MM, got {month!r:.20}")
    return month


@dataclass(frozen=True)
class VenueBookings:
    venue_id: str
    offered: int
    confirmed: int
    declined: int

    def encode(self) -> dict[str, Any]:
        return {"venue_id": self.venue_id, "offered": self.offered, "confirmed": self.confirmed,
                "declined": self.declined}


@dataclass(frozen=True)
class MonthlyStatistics:
    month: str
    venues: tuple[VenueBookings, ...]
    sessions: int
    incidents: int
    objections_filed: int
    objections_relayed: int
    objections_answered: int
    complaints_filed: int
    misconduct_recorded: int
    records: int  # evaluation records of the month the figures were computed from (reads not counted)

    def encode(self) -> dict[str, Any]:
        return {"month": self.month, "venues": [v.encode() for v in self.venues], "sessions": self.sessions,
                "incidents": self.incidents, "objections_filed": self.objections_filed,
                "objections_relayed": self.objections_relayed, "objections_answered": self.objections_answered,
                "complaints_filed": self.complaints_filed, "misconduct_recorded": self.misconduct_recorded,
                "records": self.records}

    @classmethod
    def parse(cls, value: Any, what: str = "statistics") -> "MonthlyStatistics":
        """Strictly: exactly the fields `encode` writes, counts as non-negative integers."""
        v = exact_object(value, what, {"month", "venues", "sessions", "incidents", "objections_filed",
                                       "objections_relayed", "objections_answered", "complaints_filed",
                                       "misconduct_recorded", "records"})
        venues = tuple(VenueBookings(text(exact_object(b, f"{what} venue", {"venue_id", "offered", "confirmed",
                                                                              "declined"}), "venue_id", what),
                                     count(b, "offered", what), count(b, "confirmed", what), count(b, "declined", what))
                       for b in listed(v, "venues", what))
        return cls(check_month(text(v, "month", what)), venues, *(count(v, k, what) for k in (
            "sessions", "incidents", "objections_filed", "objections_relayed", "objections_answered",
            "complaints_filed", "misconduct_recorded", "records")))

    def lines(self) -> list[str]:
        """The figures as a short table, as `bidtrace stats` prints them."""
        out = [f"month {self.month} ({self.records} records)",
               f"  sessions {self.sessions} · incidents {self.incidents} · objections filed {self.objections_filed}, "
               f"relayed {self.objections_relayed}, answered {self.objections_answered} · complaints "
               f"{self.complaints_filed} · misconduct cases {self.misconduct_recorded}",
               f"  {'venue':<24} {'offered':>8} {'confirmed':>10} {'declined':>9}"]
        out += [f"  {v.venue_id:<24} {v.offered:>8} {v.confirmed:>10} {v.declined:>9}" for v in self.venues]
        return out


def monthly_statistics(records: Iterable[LogRecord], month: str) -> MonthlyStatistics:
    """The figures of `month` (YYYY-MM) from `records` (leaf index, record), in any order; each leaf counts once."""
    check_month(month)
    seen: set[int] = set()
    bookings: dict[str, dict[str, int]] = defaultdict(lambda: {"offered": 0, "confirmed": 0, "declined": 0})
    sessions: set[str] = set()
    incidents: set[str] = set()
    objections: dict[str, set[str]] = defaultdict(set)
    complaints: set[str] = set()
    misconduct: set[str] = set()
    count = 0
    for leaf, record in sorted(records, key=lambda r: r[0]):
        if leaf in seen or record.get("type") in NOT_COUNTED or month_of(record) != month:
            continue
        seen.add(leaf)
        count += 1
        kind, payload = record.get("type"), record.get("payload")
        if not isinstance(payload, Mapping):
            continue
        if kind == "booking":
            action, venue = payload.get("action"), str(payload.get("venue_id"))
            if action in ("offered", "confirmed", "declined"):
                bookings[venue][str(action)] += 1
            elif action == "reserved":
                sessions.add(str(record.get("session_id")))
        elif kind == "incident":
            incidents.add(str(payload.get("incident_id")))
        elif kind == "objection" and payload.get("alarm") is None:
            objections[str(payload.get("status"))].add(str(payload.get("objection_id")))
        elif kind == "complaint" and payload.get("status") == "filed" and payload.get("alarm") is None:
            complaints.add(str(payload.get("complaint_id")))
        elif kind == "misconduct" and payload.get("status") == "recorded":
            misconduct.add(str(payload.get("case_id")))
    venues = tuple(VenueBookings(v, c["offered"], c["confirmed"], c["declined"]) for v, c in sorted(bookings.items()))
    return MonthlyStatistics(month, venues, len(sessions), len(incidents), len(objections["received"]),
                             len(objections["relayed"]), len(objections["answered"]), len(complaints),
                             len(misconduct), count)
