"""The hub's own state (SQLAlchemy 2, SQLite by default): venues, sessions, bookings, the expert pool,
draws, check-ins, signatures, fees, objections, misconduct cases, incidents, the supervision feed.

Personal data (expert names and identity numbers, who filed an objection, who a misconduct case is about)
lives only here; evidence carries salted commitments of it (see `hub.evidence`).
"""

from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from notary.access import registry_tables
from verifier.receipt import Receipt


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Venue(Base):
    __tablename__ = "venues"
    venue_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    rooms: Mapped[list[Any]] = mapped_column(JSON)


class RoomCameras(Base):
    """A room's camera inventory as its venue registered it (`verifier.inventory.CameraInventory`, encoded)."""

    __tablename__ = "room_cameras"
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.venue_id"), primary_key=True)
    room: Mapped[str] = mapped_column(String(200), primary_key=True)
    inventory: Mapped[dict[str, Any]] = mapped_column(JSON)
    registry_leaf: Mapped[int] = mapped_column(Integer)


class EvalSession(Base):
    """One evaluation session (评标) of a project, led by its main venue."""

    __tablename__ = "sessions"
    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(128), index=True)
    main_venue_id: Mapped[str] = mapped_column(ForeignKey("venues.venue_id"))
    room: Mapped[str] = mapped_column(String(200))
    slot_start: Mapped[str] = mapped_column(String(40))
    slot_end: Mapped[str] = mapped_column(String(40))
    bidders: Mapped[list[Any]] = mapped_column(JSON)  # [{"name", "credit_code"}]: organisations
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | archived
    tenderer_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    archive_leaf: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Booking(Base):
    __tablename__ = "bookings"
    booking_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), index=True)
    main_venue_id: Mapped[str] = mapped_column(String(128))
    venue_id: Mapped[str] = mapped_column(String(128), index=True)
    room: Mapped[str] = mapped_column(String(200))
    slot_start: Mapped[str] = mapped_column(String(40))
    slot_end: Mapped[str] = mapped_column(String(40))
    start_utc: Mapped[str] = mapped_column(String(40))
    end_utc: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # reserved | offered | confirmed | declined | cancelled
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"action", "leaf"}]


class Expert(Base):
    """The provincial expert pool (专家库). Names and identity numbers never leave the hub."""

    __tablename__ = "experts"
    expert_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    identity_number: Mapped[str] = mapped_column(String(64))
    employer: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Draw(Base):
    __tablename__ = "draws"
    draw_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # committed | drawn
    count: Mapped[int] = mapped_column(Integer)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)
    pool: Mapped[list[Any]] = mapped_column(JSON)
    excluded: Mapped[list[Any]] = mapped_column(JSON)
    conflicts: Mapped[list[Any]] = mapped_column(JSON)
    same_employer: Mapped[bool] = mapped_column(Boolean, default=True)
    venues: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    seed_hex: Mapped[str] = mapped_column(String(64))  # secret until the result reveals it
    seed_commitment: Mapped[str] = mapped_column(String(64))
    commitment_leaf: Mapped[int] = mapped_column(Integer)
    beacon: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_leaf: Mapped[int | None] = mapped_column(Integer, nullable=True)
    selected: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    assignments: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    replaces_draw: Mapped[str | None] = mapped_column(String(128), nullable=True)
    replaced_experts: Mapped[list[Any]] = mapped_column(JSON, default=list)


class DrawSchedule(Base):
    """专家预约抽取: a draw the scheduler commits at `draw_at` and runs once its commitment is anchored."""

    __tablename__ = "draw_schedules"
    schedule_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), index=True)
    draw_at: Mapped[str] = mapped_column(String(40))  # RFC 3339, as announced in the draw_schedule record
    due: Mapped[float] = mapped_column(Float, index=True)  # draw_at as a POSIX time, for the scheduler's query
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the DrawIn body, committed as given
    status: Mapped[str] = mapped_column(String(20))  # scheduled | committed | drawn | failed
    schedule_leaf: Mapped[int] = mapped_column(Integer)
    draw_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Selection(Base):
    """An expert drawn for a session and the venue they sit in."""

    __tablename__ = "selections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    draw_id: Mapped[str] = mapped_column(String(128))
    expert_id: Mapped[str] = mapped_column(String(128))
    venue_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))  # selected | replaced


class CheckIn(Base):
    __tablename__ = "checkins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    expert_id: Mapped[str] = mapped_column(String(128))
    venue_id: Mapped[str] = mapped_column(String(128))
    leaf: Mapped[int] = mapped_column(Integer, unique=True)  # one check-in serves exactly one expert
    result: Mapped[str] = mapped_column(String(20))
    identity_checked: Mapped[bool] = mapped_column(Boolean)  # the commitment was opened to this expert
    identity_verified: Mapped[bool] = mapped_column(Boolean, default=False)  # and its face comparison matched


class SignatureRow(Base):
    __tablename__ = "signatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    expert_id: Mapped[str] = mapped_column(String(128))
    document_sha256: Mapped[str] = mapped_column(String(64))
    certificate_sha256: Mapped[str] = mapped_column(String(64))
    certificate_pem: Mapped[str] = mapped_column(Text)  # holds the signer's name: stays in the hub
    leaf: Mapped[int] = mapped_column(Integer)


class Fee(Base):
    __tablename__ = "fees"
    payment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    expert_id: Mapped[str] = mapped_column(String(128))
    payer: Mapped[str] = mapped_column(String(200))
    amount_fen: Mapped[int] = mapped_column(Integer)
    leaf: Mapped[int] = mapped_column(Integer)


class Objection(Base):
    __tablename__ = "objections"
    objection_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(20))  # received | under_review | relayed | answered | withdrawn
    lead_venue_id: Mapped[str] = mapped_column(String(128))
    filed_by: Mapped[str] = mapped_column(String(200))  # personal or organisation: stays in the hub
    filed_by_principal: Mapped[str | None] = mapped_column(String(128), nullable=True)  # a bidder filing itself
    filed_by_commitment: Mapped[str] = mapped_column(String(80))
    summary: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the tenderer's (or agency's) answer
    deadline: Mapped[str] = mapped_column(String(40))  # for the answer
    deadline_epoch: Mapped[float] = mapped_column(Float, index=True)
    relay_deadline: Mapped[str | None] = mapped_column(String(40), nullable=True)
    relay_deadline_epoch: Mapped[float | None] = mapped_column(Float, nullable=True)
    relayed_to: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"principal_id", "role"}]
    answers: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"by", "role", "answer", "leaf"}]
    alarm_leaf: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the answer deadline missed
    relay_alarm_leaf: Mapped[int | None] = mapped_column(Integer, nullable=True)
    leaves: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Complaint(Base):
    """A complaint (投诉) to one supervisor (行政监督部门), who accepts or rejects it and then decides."""

    __tablename__ = "complaints"
    complaint_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    project_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(20))  # filed | accepted | rejected | decided | withdrawn
    filed_by_principal: Mapped[str] = mapped_column(String(128))
    filed_by_commitment: Mapped[str] = mapped_column(String(80))
    supervisor_id: Mapped[str] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(Text)
    objection_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    accept_deadline: Mapped[str] = mapped_column(String(40))
    decision_deadline: Mapped[str | None] = mapped_column(String(40), nullable=True)
    due_epoch: Mapped[float] = mapped_column(Float, index=True)  # the deadline of the step now awaited
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision: Mapped[str | None] = mapped_column(Text, nullable=True)
    alarm_leaves: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"alarm", "leaf"}]
    leaves: Mapped[list[Any]] = mapped_column(JSON, default=list)


class MisconductCase(Base):
    """A case of the misconduct registry (不当行为信息记录专题库). `linkage_commitment` is the same for every
    case of one party under one registry key: authorised users link cases across projects by it."""

    __tablename__ = "misconduct"
    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(128), index=True)
    session_id: Mapped[str] = mapped_column(String(128))
    venue_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))  # recorded | verified | published | forwarded
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))  # stays in the hub
    subject_public: Mapped[str] = mapped_column(String(200))  # organisation name or expert id
    subject_commitment: Mapped[str] = mapped_column(String(80))
    linkage_commitment: Mapped[str] = mapped_column(String(80), index=True)
    linkage_key: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(JSON)
    forwarded_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivery: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    leaves: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Incident(Base):
    __tablename__ = "incidents"
    incident_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    venue_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    started_at: Mapped[str] = mapped_column(String(40))
    ended_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    new_main_venue_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    affected_device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    leaves: Mapped[list[Any]] = mapped_column(JSON, default=list)


class EvidenceRow(Base):
    """The hub's mirror of the notary log for the projects it coordinates (its own and devices' records)."""

    __tablename__ = "evidence"
    leaf_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    project_id: Mapped[str] = mapped_column(String(128), index=True)
    session_id: Mapped[str] = mapped_column(String(128), index=True)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[str] = mapped_column(String(40))
    leaf_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)  # verifier.receipt.Receipt.encode()
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    @property
    def received_at(self) -> str:
        """When the notary received the record, as its receipt states (read strictly)."""
        return Receipt.parse(self.receipt, f"receipt of leaf {self.leaf_index}").received_at


class InclusionCheck(Base):
    """Whether the notary kept the promise of a receipt the hub holds (`hub.workflows.inclusion`): its leaf is
    in a later signed checkpoint (`confirmed`), or it is not, or the checkpoint forks from the history seen
    before (`broken`, with what failed). A mirrored leaf without a row is not yet confirmed."""

    __tablename__ = "inclusion_checks"
    leaf_index: Mapped[int] = mapped_column(ForeignKey("evidence.leaf_index"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # confirmed | broken
    checkpoint_size: Mapped[int] = mapped_column(Integer)  # the checkpoint checked against (0: none held)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_at: Mapped[str] = mapped_column(String(40))


class SeenCheckpoint(Base):
    """The largest notary checkpoint the hub has verified (its signed note): every later one must extend it."""

    __tablename__ = "seen_checkpoint"
    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text)


class Subscription(Base):
    __tablename__ = "subscriptions"
    subscription_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    # Who subscribed: a supervisor sees and cancels only its own subscriptions (the province all of them).
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Outbox(Base):
    """Durable per-subscriber queue: delivered strictly in id order, retried until the receiver says 2xx."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.subscription_id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    leaf_index: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ConsoleLogin(Base):
    """A one-time login code for the web console, issued to a principal over a signed request. Only its
    SHA-256 is kept: the code itself travels once, in the URL the principal opens."""

    __tablename__ = "console_logins"
    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(128))
    key_digest: Mapped[str] = mapped_column(String(64))  # the key that asked for it: a new key ends it
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsoleSessionRow(Base):
    """A signed-in browser: the cookie holds a random token, the hub only its SHA-256."""

    __tablename__ = "console_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(128), index=True)
    key_digest: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    ended: Mapped[bool] = mapped_column(Boolean, default=False)


class State(Base):
    __tablename__ = "hub_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# The hub's principals (from its access configuration and bound through its API since) and the keys revoked,
# so that a revocation holds across restarts; supervisors keep their registered webhook endpoints here.
principals, revocations = registry_tables(Base.metadata, prefix="hub_", endpoints=True)


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine
