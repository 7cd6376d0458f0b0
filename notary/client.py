"""Client of the notary API for submitters (devices, the hub): sign batches, submit, check the receipts,
read proofs.

Every receipt is checked before it is believed: signed by the notary's checkpoint key for its log, and for
exactly the record submitted. The key is the one given to the client or, failing that, the one the notary
states at `/v1/log` on first use, kept for the client's life (so a later change of key is refused).
"""

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from notary.tree import batch_tree
from verifier.canonical import canonical_bytes
from verifier.errors import VerificationError
from verifier.merkle import leaf_hash
from verifier.note import NoteKey, parse_vkey
from verifier.receipt import Receipt
from verifier.signatures import SUBMISSION_CONTEXT, batch_statement


class SubmitterKey:
    """A submitter's identity and signing key (ECDSA P-256 by default, as in device secure elements)."""

    def __init__(self, submitter_id: str, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        self.submitter_id = submitter_id
        self._key = private_key

    @classmethod
    def generate(cls, submitter_id: str, algorithm: str = "ecdsa-p256-sha256") -> "SubmitterKey":
        if algorithm == "ed25519":
            return cls(submitter_id, ed25519.Ed25519PrivateKey.generate())
        return cls(submitter_id, ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_create(cls, path: Path, submitter_id: str) -> "SubmitterKey":
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise ValueError(f"{path} is not an ECDSA or Ed25519 private key")
            return cls(submitter_id, key)
        created = cls.generate(submitter_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            created._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)
        return created

    def public_pem(self) -> str:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def sign_batch(self, records: list[dict[str, Any]]) -> str:
        """Base64 signature over the batch statement for these records, in this order."""
        root, _ = batch_tree([leaf_hash(canonical_bytes(r)) for r in records])
        statement = batch_statement(SUBMISSION_CONTEXT, self.submitter_id, len(records), root)
        return base64.b64encode(self.sign(statement)).decode()


def complete_receipts(receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in the batch paths that a submission's answer leaves out: the receipts without one are the
    leaves that request appended, one signed batch whose every leaf hash the answer carries."""
    fresh = [r for r in receipts if r["batch"].get("path") is None]
    if fresh:
        hashes = {r["batch"]["index"]: bytes.fromhex(r["leaf_hash"]) for r in fresh}
        if sorted(hashes) != list(range(fresh[0]["batch"]["size"])):
            raise NotaryError(502, "the notary's answer does not carry every leaf hash of its signed batch")
        _, paths = batch_tree([hashes[i] for i in range(fresh[0]["batch"]["size"])])
        for receipt in fresh:
            receipt["batch"]["path"] = [h.hex() for h in paths[receipt["batch"]["index"]]]
    return receipts


class NotaryError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class NotaryClient:
    def __init__(self, base_url: str, timeout: float = 30.0, admin_token: str | None = None,
                 transport: httpx.BaseTransport | None = None, notary_key: NoteKey | None = None,
                 log_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers, transport=transport)
        self._notary = (notary_key, log_id) if notary_key is not None and log_id is not None else None

    def notary_identity(self) -> tuple[NoteKey, str]:
        """The notary's checkpoint key and log id that receipts are checked against."""
        if self._notary is None:
            info = self.get("/v1/log")
            try:
                self._notary = (parse_vkey(str(info["note_key"])), str(info["log_id"]))
            except (KeyError, TypeError, VerificationError) as exc:
                raise NotaryError(502, f"the notary states no usable checkpoint key: {exc}") from exc
        return self._notary

    def check_receipts(self, records: list[dict[str, Any]], receipts: list[dict[str, Any]]) -> list[Receipt]:
        """Raise NotaryError unless there is one receipt per record, each signed by the notary for that record."""
        key, log_id = self.notary_identity()
        if len(receipts) != len(records):
            raise NotaryError(502, f"the notary answered {len(receipts)} receipts for {len(records)} records")
        checked = []
        for i, (record, receipt) in enumerate(zip(records, receipts, strict=True)):
            try:
                parsed = Receipt.parse(receipt, f"receipt #{i}")
                parsed.verify(key, log_id)
            except VerificationError as exc:
                raise NotaryError(502, f"the notary's receipt for record {i} does not hold: {exc}") from exc
            if not parsed.covers(record):
                raise NotaryError(502, f"the notary's receipt for record {i} is for another record")
            checked.append(parsed)
        return checked

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (json.JSONDecodeError, AttributeError):
                detail = response.text
            raise NotaryError(response.status_code, str(detail))
        return response.json() if response.headers.get("content-type", "").startswith("application/json") else response

    def register(self, submitter: SubmitterKey, role: str) -> dict[str, Any]:
        body = {"submitter_id": submitter.submitter_id, "role": role, "public_key": submitter.public_pem()}
        result: dict[str, Any] = self._check(self._http.post("/v1/submitters", json=body))
        return result

    def submit(
        self, submitter: SubmitterKey, records: list[dict[str, Any]], disclosures: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        body = {
            "submitter": submitter.submitter_id,
            "records": records,
            "signature": submitter.sign_batch(records),
            "disclosures": disclosures or [],
        }
        content = json.dumps(body, ensure_ascii=False).encode()
        response = self._http.post("/v1/records", content=content, headers={"content-type": "application/json"})
        receipts: list[dict[str, Any]] = complete_receipts(self._check(response)["receipts"])
        self.check_receipts(records, receipts)
        return receipts

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self._http.get(path, params=params))

    def extract(self, project_id: str, disclose: bool = False) -> bytes:
        response = self._http.get(f"/v1/projects/{project_id}/extract", params={"disclose": disclose})
        self._check(response)
        return response.content
