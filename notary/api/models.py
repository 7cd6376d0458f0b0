"""The API contract: request and response bodies as Pydantic models (published in /openapi.json)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from verifier import receipt

SubmitterId = str
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


class DisclosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0, description="position of the record in this batch")
    field: str = Field(max_length=128, description="payload field holding the commitment")
    salt: str = Field(pattern=r"^[0-9a-f]{32,128}$")
    value: str = Field(max_length=4000)


class SubmissionIn(BaseModel):
    """One record or a batch, signed once: the submitter signs the batch's RFC 9162 root."""

    model_config = ConfigDict(extra="forbid")
    submitter: str = Field(pattern=_ID)
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    signature: str = Field(max_length=200, description="base64 signature over the batch statement")
    disclosures: list[DisclosureIn] = Field(default=[], max_length=20_000)


# A receipt crosses the API as `verifier.receipt.Receipt.encode()` writes it; its schema is the format's own.
ReceiptJson = Annotated[dict[str, Any], WithJsonSchema(receipt.JSON_SCHEMA)]


class SubmissionOut(BaseModel):
    receipts: list[ReceiptJson]
    appended: int
    duplicates: int


class RecordOut(BaseModel):
    leaf_index: int
    leaf_hash: str
    entry: dict[str, Any]


class RecordPage(BaseModel):
    records: list[RecordOut]
    next_after: int | None


class CheckpointOut(BaseModel):
    size: int
    root: str
    note: str


class InclusionProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    proof: list[str]


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    proof: list[str]


class AnchorOut(BaseModel):
    size: int
    root: str
    ledger: str
    tx_id: str
    anchored_at: str


class LogOut(BaseModel):
    log_id: str
    origin: str
    note_key: str
    size: int
    anchored_size: int
    ledger: str
    max_merge_delay: int
    trust_roots: dict[str, Any]


class PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal_id: str = Field(pattern=_ID)
    role: Literal["hub_operator", "venue_operator", "device", "supervisor", "court", "bidder",
                  "tenderer", "node_operator", "notary_admin"]
    public_key: str = Field(min_length=32, max_length=4000,
                            description="PEM SubjectPublicKeyInfo, Ed25519 or ECDSA P-256")
    venue_id: str | None = Field(default=None, pattern=_ID, description="venue operators and devices")
    function: Literal["recorder", "checkin", "signing_pad"] | None = Field(default=None, description="devices")
    projects: list[Annotated[str, Field(pattern=_ID)]] | None = Field(
        default=None, max_length=1000, description="the projects a court, bidder or tenderer is bound to")


class SubmitterOut(BaseModel):
    submitter_id: str
    role: str
    public_key: str
    registered_at: str
    revoked_at: str | None


class Health(BaseModel):
    status: str
    size: int
    anchored_size: int
    anchor_lag: int
    last_error: str | None
    alarm: str | None


class Problem(BaseModel):
    detail: str
