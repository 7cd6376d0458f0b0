"""Record types and their payload schemas; which submitter role may submit which type.

Schemas forbid unknown fields, so personal data cannot slip into the log under another name:
identities appear only as salted commitments (`*_commitment`, `c1:` and 64 hex characters, made by
`verifier.commitments.commit`).
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from notary.screening import across, personal_data_in, screened, screened_texts, split_message
from verifier.cases import FORMATS, ComplaintRecord, MisconductRecord, ObjectionRecord
from verifier.errors import MalformedInput
from verifier.face import FaceMatch
from verifier.inventory import CameraInventory
from verifier.signals import BidSubmission
from verifier.streams import parse_streams
from verifier.times import parse_time

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Commitment = Annotated[str, Field(pattern=r"^c1:[0-9a-f]{64}$")]
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
# Free text is screened for personal data in clear (notary.screening).
Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(screened)]
Short = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(screened)]
Endpoint = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$"),
                     AfterValidator(screened)]
MAX_RECORD_BYTES = 1024 * 1024  # canonical bytes of one record: any accepted record fits an extract member


def rfc3339_with_offset(value: str) -> str:
    """A time as the verifier reads it (`verifier.times`): what it would refuse is refused at the door."""
    try:
        parse_time(value, "time")
    except MalformedInput as exc:
        raise ValueError(str(exc)) from exc
    return value


Timestamp = Annotated[str, Field(max_length=40), AfterValidator(rfc3339_with_offset)]


class _Strict(BaseModel):  # free text screened across fields by `validate_record`, over payload and attachments
    model_config = ConfigDict(extra="forbid", strict=True)


class Attachment(_Strict):
    name: Short
    sha256: Hex64
    size: Annotated[int, Field(ge=0)]
    media_type: Short


class DrawCancellation(_Strict):
    """A committed draw that will not be drawn, and why. Without it an unanswered commitment is suspect: its
    committer may have seen the outcome its beacon gives and kept quiet."""

    draw_id: Ident
    reason: Text


class Booking(_Strict):
    """A room and slot of a session: the main venue `reserved` its own room or `offered` the session to a
    secondary venue, which `confirmed` or `declined`; `changed` (new room or slot, to be confirmed again)
    and `cancelled` follow. `reason` says why, for changes, declines and cancellations."""

    booking_id: Ident
    action: Literal["reserved", "offered", "confirmed", "declined", "cancelled", "changed"]
    main_venue_id: Ident
    venue_id: Ident
    room: Short
    slot_start: Timestamp
    slot_end: Timestamp
    reason: Short | None = None
    tenderer_id: Ident | None = None  # on the main venue's reservation: the tenderer (招标人) of the project


class VenueQuota(_Strict):
    venue_id: Ident
    count: Annotated[int, Field(ge=1, le=1000)]


class DrawCriteria(_Strict):
    """The pool filter of a draw; typed, so no free-form value can carry personal data into the log."""

    specialty: Short
    level: Short | None = None
    replacement_reason: Literal["absent", "recused"] | None = None


class DrawCommitment(_Strict):
    draw_id: Ident
    pool: Annotated[list[Ident], Field(min_length=1, max_length=100_000)]
    pool_digest: Hex64
    criteria: DrawCriteria
    count: Annotated[int, Field(ge=1, le=1000)]
    recusal_rules: list[Short]
    seed_commitment: Hex64
    # Optional, checked by the verifier when present (see verifier.draw):
    excluded_digest: Hex64 | None = None  # pool_digest of the recused experts, fixed before the beacon exists
    venues: Annotated[list[VenueQuota], Field(min_length=1, max_length=100)] | None = None  # 主副场一次抽取
    replaces_draw: Ident | None = None  # 补抽: the draw (latest of its chain) whose experts this one replaces
    replaced_experts: Annotated[list[Ident], Field(max_length=1000)] = []
    schedule_id: Ident | None = None  # 专家预约抽取: the draw_schedule this commitment carries out

    @model_validator(mode="after")
    def _quotas(self) -> "DrawCommitment":
        if self.venues is not None and sum(q.count for q in self.venues) != self.count:
            raise ValueError(f"venue counts add up to {sum(q.count for q in self.venues)}, not to count {self.count}")
        if (self.replaces_draw is None) != (not self.replaced_experts):
            raise ValueError("a replacement draw names both replaces_draw and replaced_experts")
        return self


class DrawSchedule(_Strict):
    """专家预约抽取: a draw fixed in advance, to be committed by the hub's scheduler at `draw_at`, not by a person
    at a moment of their choosing. Its commitment names `schedule_id`, must carry the same criteria, count and
    venue quotas, and must reach the notary no earlier than `draw_at` and within `verifier.session.
    SCHEDULE_GRACE` after it (see `verifier.session.draw_schedules_kept`)."""

    schedule_id: Ident
    draw_at: Timestamp
    criteria: DrawCriteria
    count: Annotated[int, Field(ge=1, le=1000)]
    venues: Annotated[list[VenueQuota], Field(min_length=1, max_length=100)] | None = None


class DrawResult(_Strict):
    draw_id: Ident
    commitment_leaf: Annotated[int, Field(ge=0)]
    beacon: Hex64
    revealed_seed: Hex64
    excluded: list[Ident]
    selected: list[Ident]
    replaces: Ident | None = None  # the draw id this replacement draw supplements (its commitment's replaces_draw)
    assignments: dict[Ident, list[Ident]] | None = None  # venue id -> experts, when the commitment has venues


class CheckIn(_Strict):
    expert_commitment: Commitment
    method: Literal["face", "card", "manual"]
    result: Literal["matched", "rejected", "unverified"]
    provider: Short | None = None
    photo_sha256: Hex64 | None = None
    faces_detected: Annotated[int, Field(ge=0)] | None = None
    face_match: dict[str, Any] | None = None  # verifier.face.FaceMatch: decision, distance, threshold, model

    @model_validator(mode="after")
    def _result_follows_the_comparison(self) -> "CheckIn":
        if self.face_match is None:
            return self
        try:
            found = FaceMatch.from_json(self.face_match)
        except MalformedInput as exc:
            raise ValueError(str(exc)) from exc
        screened(found.model)
        if self.method != "face":
            raise ValueError(f"a face_match belongs to a face check-in, not to method {self.method}")
        expected = "matched" if found.matched else "rejected"
        if self.result != expected:
            raise ValueError(f"face_match says {found.decision}, so result must be {expected}, not {self.result}")
        return self


class SignatureEvent(_Strict):
    document_sha256: Hex64
    signer_commitment: Commitment
    certificate_sha256: Hex64  # SHA-256 of the certificate's DER bytes
    algorithm: Short
    signature: Annotated[str, Field(min_length=1, max_length=2000)]
    ca_sha256: Hex64 | None = None  # the trusted CA certificate that issued the signer's certificate


def _streams(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        parse_streams(value)
    except MalformedInput as exc:
        raise ValueError(str(exc)) from exc
    return value


class RecordingSegment(_Strict):
    camera_id: Ident
    segment_index: Annotated[int, Field(ge=0)]
    start: Timestamp
    end: Timestamp
    frame_count: Annotated[int, Field(ge=0)]
    sha256: Hex64
    previous_segment: Hex64 | None
    streams: Annotated[list[dict[str, Any]], AfterValidator(_streams)] | None = None  # what the file holds


class MediaArrival(_Strict):
    """A segment file arrived at the province's media store, its checksum confirmed by the store (see
    `devices.forwarder`); `segment_sha256` names the segment (its record's hash), `stored_sha256` the bytes
    stored (the sealed file when `sealed`)."""

    camera_id: Ident
    segment_index: Annotated[int, Field(ge=0)]
    segment_sha256: Hex64
    object_key: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9._:/\-]+$")]
    stored_sha256: Hex64
    stored_size: Annotated[int, Field(ge=0)]
    store_checksum: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=(-[0-9]{1,5})?$")]
    sealed: bool


class CameraInventoryPayload(RootModel[dict[str, Any]]):
    """The cameras that must record a session at a venue (see `verifier.inventory`, its one parser); the
    room's name is free text and screened as such."""

    @field_validator("root")
    @classmethod
    def _parse(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            inventory = CameraInventory.parse(value)
        except MalformedInput as exc:
            raise ValueError(str(exc)) from exc
        screened(inventory.room)
        return value


class FeePayment(_Strict):
    payment_id: Ident
    payee_commitment: Commitment
    payer: Short
    amount_fen: Annotated[int, Field(ge=0)]
    reference: Short


class Archive(_Strict):
    archive_id: Ident
    leaves: list[Annotated[int, Field(ge=0)]]
    leaf_hashes: list[Hex64]


class Incident(_Strict):
    incident_id: Ident
    kind: Literal["power_failure", "network_failure", "device_failure", "main_venue_switch", "other"]
    description: Text
    started_at: Timestamp
    ended_at: Timestamp | None = None
    new_main_venue_id: Ident | None = None  # for main_venue_switch
    affected_device_id: Ident | None = None  # for device_failure


class RosterEntry(_Strict):
    expert_id: Ident
    venue_id: Ident
    draw_id: Ident
    status: Literal["present", "absent", "replaced", "rejected"]
    checkin_leaf: Annotated[int, Field(ge=0)] | None = None
    # For a present expert: "verified" only when the check-in's face comparison says match (verifier.face).
    identity: Literal["verified", "unverified"] | None = None

    @model_validator(mode="after")
    def _identity_of_the_present(self) -> "RosterEntry":
        if self.identity is not None and self.status != "present":
            raise ValueError(f"identity is said only of a present expert, not of one {self.status}")
        return self


class Roster(_Strict):
    """The session roster the hub records from the devices' check-in records (named by leaf)."""

    roster_id: Ident
    experts: Annotated[list[RosterEntry], Field(max_length=1000)]


class AccessRecord(_Strict):
    """去向可查: someone read what is not public. Its project_id is the project read."""

    principal_id: Ident
    role: Ident
    action: Ident
    resource: Annotated[str, Field(min_length=1, max_length=400)]
    purpose: Short | None = None


class RegistryChange(_Strict):
    """A change to who or what is trusted: a principal bound or revoked, a CA trusted, experts imported.
    `digest` is the SHA-256 of what was registered (key PEM, certificate DER, canonical expert list)."""

    action: Literal["principal_bound", "principal_revoked", "ca_trusted", "experts_imported"]
    subject: Ident
    by: Ident
    digest: Hex64
    role: Ident | None = None
    venue_id: Ident | None = None
    function: Ident | None = None
    projects: Annotated[list[Ident], Field(max_length=1000)] = []
    endpoints: Annotated[list[Endpoint], Field(max_length=100)] = []  # a supervisor's webhook URLs (hub)
    count: Annotated[int, Field(ge=0)] | None = None


class _Format:
    """A payload with its one strict parser in `verifier.cases` (the verifier reads it the same way); its
    free text is screened here as every other record's is."""

    def __init__(self, kind: str, format_: Any) -> None:
        self.kind, self.format = kind, format_

    def validate_python(self, payload: Any) -> None:
        try:
            parsed = self.format.parse(payload, "payload")
        except MalformedInput as exc:
            raise SchemaViolation(f"{self.kind} {exc}") from exc
        for name in self.format.TEXTS:
            value = getattr(parsed, name)
            kind = personal_data_in(value) if isinstance(value, str) else None
            if kind is not None:
                raise SchemaViolation(f"{self.kind} payload.{name}: free text must not carry personal data in clear; "
                                      f"this looks like {kind} (record it in the hub, and in evidence only as a "
                                      "commitment)")
        texts = [(f"payload.{name}", v) for name in self.format.TEXTS if isinstance(v := getattr(parsed, name), str)]
        found = across(texts)  # a number spread over several of its free-text fields
        if found is not None:
            raise SchemaViolation(f"{self.kind} {split_message(*found)}")


PAYLOADS: dict[str, Any] = {
    "booking": Booking,
    "draw_schedule": DrawSchedule,
    "draw_commitment": DrawCommitment,
    "draw_result": DrawResult,
    "draw_cancellation": DrawCancellation,
    "checkin": CheckIn,
    "signature": SignatureEvent,
    "recording_segment": RecordingSegment,
    "misconduct": MisconductRecord,
    "objection": ObjectionRecord,
    "complaint": ComplaintRecord,
    "bid_submission": BidSubmission,
    "camera_inventory": CameraInventoryPayload,
    "media_arrival": MediaArrival,
    "fee_payment": FeePayment,
    "archive": Archive,
    "incident": Incident,
    "roster": Roster,
    "access": AccessRecord,
    "registry": RegistryChange,
}

ROLES: dict[str, frozenset[str]] = {
    "hub": frozenset(PAYLOADS),
    "device": frozenset({"checkin", "signature", "recording_segment", "media_arrival", "incident"}),
    "notary": frozenset({"access", "registry"}),
}


class RecordEnvelope(_Strict):
    type: Literal[tuple(PAYLOADS)]  # type: ignore[valid-type]
    project_id: Ident
    session_id: Ident
    venue_id: Ident
    device_id: Ident
    occurred_at: Timestamp
    payload: dict[str, Any]
    attachments: Annotated[list[Attachment], Field(max_length=100)] = []


_RECORD = TypeAdapter(RecordEnvelope)
_PAYLOAD = {name: _Format(name, model) if name in FORMATS or name == "bid_submission" else TypeAdapter(model)
            for name, model in PAYLOADS.items()}


class SchemaViolation(ValueError):
    """A record does not match its type's schema; the message names the field."""


def _explain(exc: ValidationError, prefix: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    return f"{where}: {first['msg']}"


def validate_record(record: Any) -> str:
    """Check a record against the envelope and its payload schema; return its type."""
    if not isinstance(record, dict):
        raise SchemaViolation(f"record must be a JSON object, got {type(record).__name__}")
    try:
        envelope = _RECORD.validate_python(record)
    except ValidationError as exc:
        raise SchemaViolation(_explain(exc, "")) from exc
    kind = str(record["type"])
    try:
        payload = _PAYLOAD[kind].validate_python(record["payload"])
    except ValidationError as exc:
        raise SchemaViolation(f"{kind} " + _explain(exc, "payload")) from exc
    # A number spread over several free-text fields of the record (payload and attachment names together).
    texts = [*screened_texts(payload, ("payload",))] if isinstance(payload, BaseModel) else []
    found = across([*texts,
                    *(t for i, a in enumerate(envelope.attachments) for t in screened_texts(a, ("attachments", i)))])
    if found is not None:
        raise SchemaViolation(f"{kind} {split_message(*found)}")
    return kind


def commitment_fields(record: dict[str, Any]) -> set[str]:
    return {name for name in record.get("payload", {}) if name.endswith("_commitment")}
