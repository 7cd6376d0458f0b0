"""Dependencies shared by the routers: the hub, who is calling and what they may do.

Every caller but the public signs its requests (RFC 9421, see `notary.access`); the role and its bindings
come from the hub's registry (its access configuration, and bindings made through `POST /principals` since),
never from the request. `PERMISSIONS` is the role × action matrix that README.md shows and a test walks
over HTTP, enforced by `notary.access.Permissions` (shared with the notary). Object-level rules (which
venue may confirm which booking, which venue leads an objection, which projects a court was granted) are
checked where the object is known, against the caller's bindings.
"""

from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from hub import db
from hub.errors import Forbidden
from hub.service import Hub
from hub.workflows import bookings
from notary.access import PUBLIC, Caller, Permissions, Role

R = Role
T = TypeVar("T")
PERMISSIONS: dict[str, frozenset[str]] = {
    "read_public": frozenset({PUBLIC, *R}),  # 信息公开 and health
    "manage_registry": frozenset({R.HUB_OPERATOR}),  # venues, the expert pool, trusted CAs
    "register_cameras": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR}),  # a venue its own rooms' cameras
    "list_venues": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR, R.SUPERVISOR}),
    "run_session": frozenset({R.HUB_OPERATOR}),  # sessions, offers, draws, roster, signatures, fees, archive
    "answer_booking": frozenset({R.VENUE_OPERATOR}),  # confirm or decline: the offered venue itself
    "cancel_booking": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR}),  # the booked or the main venue
    "file_objection": frozenset({R.HUB_OPERATOR, R.BIDDER}),  # a bidder itself, or the province for one on paper
    "lead_objection": frozenset({R.VENUE_OPERATOR}),  # review and relay: the lead (main) venue
    "answer_objection": frozenset({R.TENDERER, R.SUPERVISOR}),  # the parties it was relayed to
    "file_complaint": frozenset({R.BIDDER}),  # file or withdraw a complaint (投诉), the bidder itself
    "handle_complaint": frozenset({R.SUPERVISOR}),  # accept, reject, decide: the supervisor addressed
    "follow_case": frozenset({R.HUB_OPERATOR, R.SUPERVISOR, R.BIDDER, R.TENDERER}),  # parties: their own cases
    "report_incident": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR}),  # a venue for itself
    "report_checkin": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR, R.DEVICE}),  # check-in stations, own venue
    "handle_misconduct": frozenset({R.HUB_OPERATOR}),
    "read_session": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR, R.SUPERVISOR, R.COURT}),
    "read_cases": frozenset({R.HUB_OPERATOR, R.SUPERVISOR}),  # misconduct registry, incidents, alarms
    "read_draw": frozenset({R.HUB_OPERATOR, R.SUPERVISOR}),  # seeds and drawn experts: sealed from the rest
    "submit_bid": frozenset({R.BIDDER}),  # its own bids, for its projects (the machine code and address keyed)
    "read_statistics": frozenset({R.HUB_OPERATOR, R.SUPERVISOR}),  # monthly statistics, bid-rigging signals
    "subscribe": frozenset({R.HUB_OPERATOR, R.SUPERVISOR}),  # only to a supervisor's registered endpoints
    "verify_extract": frozenset({R.HUB_OPERATOR, R.SUPERVISOR, R.COURT}),  # against the hub's published roots
    # Who may bind and revoke whom at the hub (each binding and revocation a registry record in the log):
    "list_principals": frozenset({R.HUB_OPERATOR}),
    "manage_hub_operators": frozenset({R.HUB_OPERATOR}),  # and node operators, notary administrators
    "manage_venue_operators": frozenset({R.HUB_OPERATOR}),
    "manage_devices": frozenset({R.HUB_OPERATOR, R.VENUE_OPERATOR}),  # a venue operator: its own venue's only
    "manage_supervisors": frozenset({R.HUB_OPERATOR}),  # with the endpoints webhooks may go to
    "manage_courts": frozenset({R.HUB_OPERATOR}),  # with the projects each was granted
    "manage_parties": frozenset({R.HUB_OPERATOR}),  # bidders and tenderers, with their projects
}
# The action that binding or revoking a principal of each role needs.
MANAGE: dict[Role, str] = {
    R.HUB_OPERATOR: "manage_hub_operators", R.NODE_OPERATOR: "manage_hub_operators",
    R.NOTARY_ADMIN: "manage_hub_operators", R.VENUE_OPERATOR: "manage_venue_operators",
    R.DEVICE: "manage_devices", R.SUPERVISOR: "manage_supervisors", R.COURT: "manage_courts",
    R.BIDDER: "manage_parties", R.TENDERER: "manage_parties",
}
assert set(MANAGE) == set(Role), "every role needs the action that binds it"


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


# One enforcement for both services (notary.access.Permissions), over this service's matrix.
guard = Permissions(PERMISSIONS)
get_caller = guard.caller  # the authenticated principal, or the public when the request carries no signature
allowed = guard.allowed
require = guard.require
permit = guard.permit  # for routes whose action depends on the path or the body


def release(hub: Hub, caller: Caller, value: T) -> T:
    """What is not public, as it is handed out: only if its reader still stands, checked again at that
    moment, so a read authorised before a revocation does not complete after it."""
    hub.check_standing(caller)
    return value


def acting_venue(caller: Caller) -> str | None:
    """The venue a caller acts for: its bound venue; None for the province (hub operator, local)."""
    return caller.principal.venue_id if caller.principal is not None else None


def require_venue(caller: Caller, venues: set[str], what: str) -> str | None:
    """The caller's venue if it is one of `venues`; None for the province; else refused by name."""
    venue = acting_venue(caller)
    if caller.principal is not None and caller.principal.role in (R.VENUE_OPERATOR, R.DEVICE) and venue not in venues:
        raise Forbidden(f"{caller.principal.describe()} may not {what}; that is for "
                        f"{' or '.join(sorted(venues))}")
    return venue


def check_project(caller: Caller, project_id: str) -> None:
    p = caller.principal
    if p is not None and p.role is R.COURT and project_id not in p.projects:
        raise Forbidden(f"{p.describe()} was not granted project {project_id}")


def check_session(caller: Caller, s: Session, session: db.EvalSession) -> None:
    """A court reads only the projects it was granted; a venue operator only the sessions its venue takes
    part in (as its main venue or a secondary venue with a confirmed booking), never another venue's sessions.
    A venue that was only offered the session reads its booking, which says what it is asked to confirm."""
    check_project(caller, session.project_id)
    p = caller.principal
    if p is not None and p.role is R.VENUE_OPERATOR and p.venue_id not in bookings.venues_of(s, session):
        raise Forbidden(f"{p.describe()} may not read session {session.session_id}: venue {p.venue_id} "
                        f"takes no part in it")
