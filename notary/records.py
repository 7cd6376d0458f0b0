"""Record types and their payload schemas; which submitter role may submit which type.

Schemas forbid unknown fields, so personal data cannot slip into the log under another name:
identities appear only as salted commitments (`*_commitment`, 64 hex characters).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Commitment = Hex64
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]


def _rfc3339_with_offset(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time") from exc
    if parsed.tzinfo is None or "T" not in value:
        raise ValueError(f"{value!r} must be an RFC 3339 date-time with a UTC offset")
    return value


Timestamp = Annotated[str, Field(max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Timed(_Strict):
    @field_validator("*", mode="after")
    @classmethod
    def _times(cls, value: Any, info: Any) -> Any:
        if info.field_name in _TIME_FIELDS and isinstance(value, str):
            return _rfc3339_with_offset(value)
        return value


_TIME_FIELDS = {"occurred_at", "slot_start", "slot_end", "start", "end", "deadline", "started_at", "ended_at"}


class Attachment(_Strict):
    name: Short
    sha256: Hex64
    size: Annotated[int, Field(ge=0)]
    media_type: Short


class Booking(_Timed):
    booking_id: Ident
    action: Literal["offered", "confirmed", "declined", "cancelled", "changed"]
    main_venue_id: Ident
    venue_id: Ident
    room: Short
    slot_start: Timestamp
    slot_end: Timestamp


class DrawCommitment(_Strict):
    draw_id: Ident
    pool: Annotated[list[Ident], Field(min_length=1, max_length=100_000)]
    pool_digest: Hex64
    criteria: dict[str, Any]
    count: Annotated[int, Field(ge=1, le=1000)]
    recusal_rules: list[Short]
    seed_commitment: Hex64


class DrawResult(_Strict):
    draw_id: Ident
    commitment_leaf: Annotated[int, Field(ge=0)]
    beacon: Hex64
    revealed_seed: Hex64
    excluded: list[Ident]
    selected: list[Ident]
    replaces: Ident | None = None


class CheckIn(_Strict):
    expert_commitment: Commitment
    method: Literal["face", "card", "manual"]
    result: Literal["matched", "rejected", "unverified"]
    provider: Short | None = None
    photo_sha256: Hex64 | None = None
    faces_detected: Annotated[int, Field(ge=0)] | None = None


class SignatureEvent(_Strict):
    document_sha256: Hex64
    signer_commitment: Commitment
    certificate_sha256: Hex64
    algorithm: Short
    signature: Annotated[str, Field(min_length=1, max_length=2000)]


class RecordingSegment(_Timed):
    camera_id: Ident
    segment_index: Annotated[int, Field(ge=0)]
    start: Timestamp
    end: Timestamp
    frame_count: Annotated[int, Field(ge=0)]
    sha256: Hex64
    previous_segment: Hex64 | None


class Misconduct(_Strict):
    case_id: Ident
    status: Literal["recorded", "verified", "published", "forwarded"]
    subject_kind: Literal["tenderer", "agency", "bidder", "expert"]
    subject_commitment: Commitment
    description: Text
    evidence: list[Annotated[int, Field(ge=0)]] = []


class Objection(_Timed):
    objection_id: Ident
    status: Literal["received", "under_review", "answered", "withdrawn"]
    filed_by_commitment: Commitment
    summary: Text
    deadline: Timestamp | None = None


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


class Incident(_Timed):
    incident_id: Ident
    kind: Literal["power_failure", "network_failure", "device_failure", "main_venue_switch", "other"]
    description: Text
    started_at: Timestamp
    ended_at: Timestamp | None = None


PAYLOADS: dict[str, type[BaseModel]] = {
    "booking": Booking,
    "draw_commitment": DrawCommitment,
    "draw_result": DrawResult,
    "checkin": CheckIn,
    "signature": SignatureEvent,
    "recording_segment": RecordingSegment,
    "misconduct": Misconduct,
    "objection": Objection,
    "fee_payment": FeePayment,
    "archive": Archive,
    "incident": Incident,
}

ROLES: dict[str, frozenset[str]] = {
    "hub": frozenset(PAYLOADS),
    "device": frozenset({"checkin", "signature", "recording_segment", "incident"}),
}


class RecordEnvelope(_Timed):
    type: Literal[tuple(PAYLOADS)]  # type: ignore[valid-type]
    project_id: Ident
    session_id: Ident
    venue_id: Ident
    device_id: Ident
    occurred_at: Timestamp
    payload: dict[str, Any]
    attachments: Annotated[list[Attachment], Field(max_length=100)] = []


_RECORD = TypeAdapter(RecordEnvelope)
_PAYLOAD = {name: TypeAdapter(model) for name, model in PAYLOADS.items()}


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
        _RECORD.validate_python(record)
    except ValidationError as exc:
        raise SchemaViolation(_explain(exc, "")) from exc
    kind = str(record["type"])
    try:
        _PAYLOAD[kind].validate_python(record["payload"])
    except ValidationError as exc:
        raise SchemaViolation(f"{kind} " + _explain(exc, "payload")) from exc
    return kind


def commitment_fields(record: dict[str, Any]) -> set[str]:
    return {name for name in record.get("payload", {}) if name.endswith("_commitment")}
