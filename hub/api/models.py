"""Request and response bodies of the hub API (published in /openapi.json)."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from notary.records import Endpoint, rfc3339_with_offset
from notary.screening import ScreenedAcross, screened

IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
Ident = Annotated[str, Field(pattern=IDENT)]
# Free text is screened for personal data in clear (identity, phone and credit-code numbers); the fields
# that must hold such a value (an expert's identity number, a bidder's credit code) have their own types.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(screened)]
Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(screened)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Timestamp = Annotated[str, Field(max_length=40), AfterValidator(rfc3339_with_offset)]


class _In(ScreenedAcross, BaseModel):  # BaseModel named too, for linters that do not follow imports
    """A request body: no unknown fields; its free text screened field by field and across fields."""

    model_config = ConfigDict(extra="forbid")


class VenueIn(_In):
    venue_id: Ident
    name: Name
    city: Name
    rooms: Annotated[list[Name], Field(min_length=1, max_length=100)]


class CameraIn(_In):
    camera_id: Ident
    heading_degrees: Annotated[int, Field(ge=0, le=359, description="where the lens points, clockwise from the "
                                                                     "room's reference wall")]
    field_of_view_degrees: Annotated[int, Field(ge=1, le=360)]
    audio: bool = Field(description="records sound into its segments (高灵敏度拾音)")


class CamerasIn(_In):
    """A room's cameras: together they must see the room all round (360°)."""

    cameras: Annotated[list[CameraIn], Field(min_length=1, max_length=64)]


class ExpertIn(_In):
    expert_id: Ident
    name: Name
    identity_number: Annotated[str, Field(min_length=4, max_length=64)]
    employer: Name
    specialty: Name
    level: Annotated[str, Field(min_length=1, max_length=50)]
    active: bool = True


class ExpertsIn(_In):
    experts: Annotated[list[ExpertIn], Field(min_length=1, max_length=100_000)]


class Bidder(_In):
    name: Name
    credit_code: Annotated[str, Field(min_length=1, max_length=64, description="统一社会信用代码")]


class SessionIn(_In):
    session_id: Ident
    project_id: Ident
    main_venue_id: Ident
    room: Name
    slot_start: Timestamp
    slot_end: Timestamp
    bidders: Annotated[list[Bidder], Field(max_length=1000)] = []
    tenderer_id: Ident | None = Field(default=None, description="the tenderer's (招标人) principal id")


class OfferIn(_In):
    venue_id: Ident
    room: Name
    slot_start: Timestamp | None = None
    slot_end: Timestamp | None = None


class BookingActionIn(_In):
    """The acting venue is the caller's (from its credential), never named in the body."""

    reason: Name | None = None


class BookingChangeIn(_In):
    room: Name | None = None
    slot_start: Timestamp | None = None
    slot_end: Timestamp | None = None
    reason: Name | None = None


class VenueQuotaIn(_In):
    venue_id: Ident
    count: Annotated[int, Field(ge=1, le=1000)]


class DrawCriteriaIn(_In):
    specialty: Name
    level: Annotated[str, Field(min_length=1, max_length=50), AfterValidator(screened)] | None = None


class DrawIn(_In):
    criteria: "DrawCriteriaIn" = Field(description="pool filter: specialty (required), level (optional)")
    count: Annotated[int, Field(ge=1, le=1000)] | None = None
    venues: Annotated[list[VenueQuotaIn], Field(min_length=1, max_length=100)] | None = None
    same_employer_recusal: bool = True
    conflicts: Annotated[list[Ident], Field(max_length=10_000)] = []


class DrawScheduleIn(DrawIn):
    """专家预约抽取: the same draw, committed by the hub's scheduler at `draw_at` rather than now."""

    draw_at: Timestamp = Field(description="when the scheduler commits the draw (RFC 3339 with offset), "
                                           "in the future and within 90 days")


class ReplacementIn(_In):
    experts: Annotated[list[Ident], Field(min_length=1, max_length=1000)]
    reason: Literal["absent", "recused"]
    conflicts: Annotated[list[Ident], Field(max_length=10_000)] = []


class CheckInReportIn(_In):
    expert_id: Ident
    checkin_leaf: Annotated[int, Field(ge=0)]
    salt: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="opening of the record's expert_commitment, to check it names this expert")


class SignatureIn(_In):
    expert_id: Ident
    document_sha256: Hex64
    certificate_pem: Annotated[str, Field(min_length=1, max_length=20_000)]
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{16,400}$", description="DER ECDSA signature, hex")]


class FeeIn(_In):
    expert_id: Ident
    amount_fen: Annotated[int, Field(ge=1, le=10**10)]
    payer: Name


class ObjectionIn(_In):
    """A bidder files with its own credential and names nobody; the province files one received on paper,
    naming who filed it (`filed_by`), and may set its deadlines."""

    filed_by: Name | None = None
    summary: Text
    deadline: Timestamp | None = Field(default=None, description="for the answer")
    relay_deadline: Timestamp | None = Field(default=None, description="for the lead venue's relay")


class ObjectionStepIn(_In):
    """The acting venue or party is the caller's (from its credential), never named in the body."""

    answer: Text | None = None
    to: Annotated[list[Ident], Field(max_length=100, description="relay: the tenderer's (or agency's) and the "
                                                                    "supervisors' principal ids")] = []


class ComplaintIn(_In):
    supervisor_id: Ident = Field(description="the supervisor (行政监督部门) the complaint is addressed to")
    summary: Text
    objection_id: Ident | None = Field(default=None, description="the objection raised first, where required")


class ComplaintStepIn(_In):
    text: Text | None = Field(default=None, description="reject: the reason; decide: the decision")


class MisconductIn(_In):
    session_id: Ident
    subject_kind: Literal["tenderer", "agency", "bidder", "expert"]
    subject_id: Annotated[str, Field(min_length=1, max_length=64, description="credit code, or expert id")]
    subject_name: Name | None = Field(default=None, description="organisation name (public once published)")
    description: Text
    evidence: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=1000)] = []


class MisconductStepIn(_In):
    evidence: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=1000)] = []
    supervisor: Ident | None = Field(default=None, description="forward: the supervisor's principal id")
    endpoint: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="forward: one of the supervisor's registered endpoints (default: the first)")


class BidIn(_In):
    """A bid as the trading system received it from the calling bidder: its document's SHA-256, the machine
    code (机器码) of the computer that made it and the address it came from; the last two enter the log only
    as keyed tags."""

    document_sha256: Hex64
    device_fingerprint: Annotated[str, Field(min_length=4, max_length=200)]
    network_address: Annotated[str, Field(min_length=2, max_length=64)]


class RegistrySearchIn(_In):
    """Link cases across projects: the party by credit code (organisations) or expert id; never in a URL."""

    subject_kind: Literal["tenderer", "agency", "bidder", "expert"]
    subject_id: Annotated[str, Field(min_length=1, max_length=64)]


class IncidentIn(_In):
    venue_id: Ident
    kind: Literal["power_failure", "network_failure", "device_failure", "main_venue_switch", "other"]
    description: Text
    started_at: Timestamp
    ended_at: Timestamp | None = None
    new_main_venue_id: Ident | None = None
    affected_device_id: Ident | None = None


class IncidentResolveIn(_In):
    ended_at: Timestamp


class SubscriptionIn(_In):
    project_id: Ident
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    secret: Annotated[str, Field(min_length=16, max_length=200)]


class PrincipalIn(_In):
    """A principal to bind at the hub. Only `role` is needed to decide whether the caller may bind it at all;
    the rest is then checked as an access configuration's entry is (the bindings that role needs, no others)."""

    role: Literal["hub_operator", "venue_operator", "device", "supervisor", "court", "bidder", "tenderer",
                  "node_operator", "notary_admin"]
    principal_id: Ident | None = None
    public_key: Annotated[str, Field(min_length=32, max_length=4000,
                                     description="PEM SubjectPublicKeyInfo, Ed25519 or ECDSA P-256")] | None = None
    venue_id: Ident | None = Field(default=None, description="venue operators and devices")
    function: Literal["recorder", "checkin", "signing_pad"] | None = Field(default=None, description="devices")
    projects: Annotated[list[Ident], Field(max_length=1000)] | None = Field(
        default=None, description="the projects a court or complainant is granted")
    endpoints: Annotated[list[Endpoint], Field(max_length=100)] | None = Field(
        default=None, description="a supervisor's webhook URLs: the only places the hub will push to")


class Problem(BaseModel):
    detail: str


Json = dict[str, Any]
