"""Client of the notary API for submitters (devices, the hub): sign batches, submit, read proofs."""

import base64
import json
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from notary.access import PrincipalKey, Role, SignedRequests
from notary.tree import batch_tree
from verifier.canonical import canonical_bytes
from verifier.merkle import leaf_hash
from verifier.signatures import SUBMISSION_CONTEXT, batch_statement


class SubmitterKey(PrincipalKey):
    """A submitter's identity and signing key (ECDSA P-256 by default, as in device secure elements). The same
    key signs its batches of evidence and its requests (it is a principal of the notary)."""

    @property
    def submitter_id(self) -> str:
        return self.principal_id

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(message)
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

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
    """`as_principal` signs every request with that principal's key; a submission is always signed with the
    submitter's own key (the principal submitting is the submitter)."""

    def __init__(self, base_url: str, timeout: float = 30.0, as_principal: PrincipalKey | None = None,
                 transport: httpx.BaseTransport | None = None, purpose: str | None = None) -> None:
        auth = SignedRequests(as_principal, purpose) if as_principal is not None else None
        self._http = httpx.Client(base_url=base_url, timeout=timeout, auth=auth, transport=transport)
        self._submitters: dict[str, SignedRequests] = {}

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

    def register(self, key: PrincipalKey, role: str, venue_id: str | None = None, function: str | None = None,
                 projects: list[str] | None = None) -> dict[str, Any]:
        """Bind a principal (needs a notary administrator's key). `role` "hub" means the coordination hub
        (hub_operator); a device needs its venue and function ("recorder", "checkin", "signing_pad")."""
        role = {"hub": Role.HUB_OPERATOR.value}.get(role, role)
        body: dict[str, Any] = {"principal_id": key.principal_id, "role": role, "public_key": key.public_pem()}
        if venue_id is not None:
            body["venue_id"] = venue_id
        if function is not None:
            body["function"] = function
        if projects:
            body["projects"] = projects
        result: dict[str, Any] = self._check(self._http.post("/v1/principals", json=body))
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
        auth = self._submitters.get(submitter.submitter_id)
        if auth is None or auth.key is not submitter:
            auth = self._submitters[submitter.submitter_id] = SignedRequests(submitter)
        response = self._http.post("/v1/records", content=content, headers={"content-type": "application/json"},
                                   auth=auth)
        receipts: list[dict[str, Any]] = self._check(response)["receipts"]
        return complete_receipts(receipts)

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self._http.get(path, params=params))

    def extract(self, project_id: str, disclose: bool = False) -> bytes:
        response = self._http.get(f"/v1/projects/{project_id}/extract", params={"disclose": disclose})
        self._check(response)
        return response.content
