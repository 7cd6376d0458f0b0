"""Client of the notary API for submitters (devices, the hub): sign batches, submit, check the receipts,
read proofs.

Every receipt is checked before it is believed: signed by the notary's checkpoint key for its log, and for
exactly the record submitted. The key is the one given to the client or, failing that, the one the notary
states at `/v1/log` on first use, kept for the client's life (so a later change of key is refused).
"""

import base64
import json
import time
from dataclasses import replace
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from notary.access import AccessConfigError, Principal, PrincipalKey, Role, SignedRequests
from notary.tree import batch_tree
from verifier.canonical import canonical_bytes
from verifier.errors import VerificationError
from verifier.merkle import hex_hashes, leaf_hash, verify_consistency, verify_inclusion
from verifier.note import Checkpoint, NoteKey, parse_vkey, verify_checkpoint
from verifier.receipt import Receipt
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


def complete_receipts(answer: Any) -> list[Receipt]:
    """Read a submission answer's receipts strictly and fill in the batch paths it leaves out: the receipts
    without one are the members that request appended, one signed batch whose every member the answer
    carries."""
    if not isinstance(answer, list):
        raise NotaryError(502, f"the notary's answer holds no list of receipts, got {type(answer).__name__}")
    try:
        receipts = [Receipt.parse(r, f"receipt #{i}", with_path=not _pathless(r)) for i, r in enumerate(answer)]
    except VerificationError as exc:
        raise NotaryError(502, f"the notary's answer holds a malformed receipt: {exc}") from exc
    fresh = [r for r, raw in zip(receipts, answer, strict=True) if _pathless(raw)]
    if not fresh:
        return receipts
    size = fresh[0].batch_size
    try:
        members = {r.batch_index: r.member for r in fresh}
    except VerificationError as exc:
        raise NotaryError(502, f"the notary's answer holds a malformed receipt: {exc}") from exc
    if sorted(members) != list(range(size)):
        raise NotaryError(502, "the notary's answer does not carry every leaf hash of its signed batch")
    _, paths = batch_tree([members[i] for i in range(size)])
    return [replace(r, batch_path=tuple(paths[r.batch_index])) if _pathless(raw) else r
            for r, raw in zip(receipts, answer, strict=True)]


def _pathless(raw: Any) -> bool:
    """A receipt of the answer written without its batch path (`Receipt.encode(with_path=False)`)."""
    return isinstance(raw, dict) and isinstance(raw.get("batch"), dict) and "path" not in raw["batch"]


BUSY_ATTEMPTS = 5  # a submission answered 503 with Retry-After is sent again, up to this many times in all
_MAX_BUSY_WAIT = 5.0


def _busy_wait(response: httpx.Response) -> float | None:
    """Seconds to wait before sending a submission again, if the notary answered that it is full; else None."""
    if response.status_code != 503:
        return None
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), _MAX_BUSY_WAIT)
    except ValueError:
        return None


class NotaryError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class BrokenPromise(NotaryError):
    """The notary broke its promise: a receipt's leaf is not in its signed checkpoint, or its checkpoints do not
    lie on one history (it equivocated). Not a transient failure; the evidence is to be kept and shown."""

    def __init__(self, detail: str) -> None:
        super().__init__(502, detail)


class NotaryClient:
    """`as_principal` signs every request with that principal's key; a submission is always signed with the
    submitter's own key (the principal submitting is the submitter). Every receipt is checked against the
    notary's checkpoint key: `notary_key` and `log_id` pin it, else it is read once from /v1/log."""

    def __init__(self, base_url: str, timeout: float = 30.0, as_principal: PrincipalKey | None = None,
                 transport: httpx.BaseTransport | None = None, purpose: str | None = None,
                 notary_key: NoteKey | None = None, log_id: str | None = None) -> None:
        auth = SignedRequests(as_principal, purpose) if as_principal is not None else None
        self._http = httpx.Client(base_url=base_url, timeout=timeout, auth=auth, transport=transport)
        self._submitters: dict[str, SignedRequests] = {}
        self._notary = (notary_key, log_id) if notary_key is not None and log_id is not None else None
        self._seen: Checkpoint | None = None  # the largest checkpoint this client has verified
        self._seen_note: str | None = None  # and its signed note

    def notary_identity(self) -> tuple[NoteKey, str]:
        """The notary's checkpoint key and log id that receipts are checked against."""
        if self._notary is None:
            info = self.get("/v1/log")
            try:
                self._notary = (parse_vkey(str(info["note_key"])), str(info["log_id"]))
            except (KeyError, TypeError, VerificationError) as exc:
                raise NotaryError(502, f"the notary states no usable checkpoint key: {exc}") from exc
        return self._notary

    def check_receipts(self, records: list[dict[str, Any]], receipts: list[Receipt]) -> None:
        """Raise NotaryError unless there is one receipt per record, each signed by the notary for that record."""
        key, log_id = self.notary_identity()
        if len(receipts) != len(records):
            raise NotaryError(502, f"the notary answered {len(receipts)} receipts for {len(records)} records")
        for i, (record, receipt) in enumerate(zip(records, receipts, strict=True)):
            try:
                receipt.verify(key, log_id)
            except VerificationError as exc:
                raise NotaryError(502, f"the notary's receipt for record {i} does not hold: {exc}") from exc
            if not receipt.covers(record):
                raise NotaryError(502, f"the notary's receipt for record {i} is for another record")

    def newest_checkpoint(self) -> Checkpoint:
        """The notary's newest checkpoint; raise BrokenPromise unless it is signed by the notary's key and
        consistent with every checkpoint this client saw before (an equivocating notary would have to fork
        between two calls)."""
        key, _ = self.notary_identity()
        answer = self.get("/v1/checkpoint")
        try:
            checkpoint = verify_checkpoint(str(answer["note"]), key)
        except (KeyError, TypeError, VerificationError) as exc:
            raise BrokenPromise(f"the notary's checkpoint does not hold: {exc}") from exc
        if checkpoint.origin != key.name:
            raise BrokenPromise(f"the notary's checkpoint is of origin {checkpoint.origin!r:.60}, not {key.name!r}")
        self._check_consistent(checkpoint)
        if self._seen is checkpoint:
            self._seen_note = str(answer["note"])
        return checkpoint

    def check_included(self, receipt: Receipt, checkpoint: Checkpoint | None = None) -> Checkpoint:
        """Raise unless `checkpoint` (by default the notary's newest, see `newest_checkpoint`) includes the
        receipt's leaf; return that checkpoint. A receipt is only a promise; this is the check that it was kept.

        NotaryError 409: the leaf is not yet in the checkpoint (ask again within the log's maximum merge
        delay). BrokenPromise: the receipt, the checkpoint or the inclusion proof does not hold."""
        key, log_id = self.notary_identity()
        try:
            receipt.verify(key, log_id)
        except VerificationError as exc:
            raise BrokenPromise(f"the receipt for leaf {receipt.leaf_index} does not hold: {exc}") from exc
        if checkpoint is None:
            checkpoint = self.newest_checkpoint()
        if checkpoint.size <= receipt.leaf_index:
            raise NotaryError(409, f"leaf {receipt.leaf_index} is not yet in a checkpoint (newest has size "
                                   f"{checkpoint.size}); ask again within the log's maximum merge delay")
        proof = self.get("/v1/proof/inclusion", leaf_index=receipt.leaf_index, tree_size=checkpoint.size)
        try:
            verify_inclusion(receipt.leaf_hash, receipt.leaf_index, checkpoint.size,
                             hex_hashes("inclusion proof", proof.get("proof")), checkpoint.root)
        except (AttributeError, VerificationError) as exc:
            raise BrokenPromise(f"leaf {receipt.leaf_index} of the receipt is not in the notary's checkpoint of "
                                f"size {checkpoint.size}: {exc}") from exc
        return checkpoint

    @property
    def seen(self) -> Checkpoint | None:
        """The largest checkpoint this client has verified."""
        return self._seen

    @property
    def seen_note(self) -> str | None:
        """The signed note of the largest checkpoint this client has verified, for its owner to keep (`saw`)."""
        return self._seen_note

    def saw(self, note: str) -> Checkpoint:
        """Take a checkpoint note this client's owner verified before (kept across restarts) as seen: every
        later checkpoint must be consistent with it. Raise BrokenPromise if it is not the notary's."""
        key, _ = self.notary_identity()
        try:
            checkpoint = verify_checkpoint(note, key)
        except VerificationError as exc:
            raise BrokenPromise(f"the checkpoint kept from before does not hold: {exc}") from exc
        if self._seen is None or checkpoint.size > self._seen.size:
            self._seen, self._seen_note = checkpoint, note
        return checkpoint

    def _check_consistent(self, checkpoint: Checkpoint) -> None:
        """The new checkpoint and the largest one seen before lie on one history (RFC 9162 consistency)."""
        seen = self._seen
        if seen is None or checkpoint.size > seen.size:
            self._seen = checkpoint
        if seen is None:
            return
        older, newer = (seen, checkpoint) if seen.size <= checkpoint.size else (checkpoint, seen)
        answer = self.get("/v1/proof/consistency", first=older.size, second=newer.size)
        try:
            verify_consistency(older.size, newer.size, hex_hashes("consistency proof", answer.get("proof")),
                               older.root, newer.root)
        except (AttributeError, VerificationError) as exc:
            self._seen = seen
            raise BrokenPromise(f"the notary's checkpoint of size {checkpoint.size} is not consistent with the "
                                f"one of size {seen.size} it showed before: {exc}") from exc

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
                 projects: list[str] | None = None) -> Principal:
        """Bind a principal (needs a notary administrator's key). `role` "hub" means the coordination hub
        (hub_operator); a device needs its venue and function ("recorder", "checkin", "signing_pad"). Returns
        the principal as the notary bound it (its answer read strictly), which must be this key in this role."""
        role = {"hub": Role.HUB_OPERATOR.value}.get(role, role)
        body: dict[str, Any] = {"principal_id": key.principal_id, "role": role, "public_key": key.public_pem()}
        if venue_id is not None:
            body["venue_id"] = venue_id
        if function is not None:
            body["function"] = function
        if projects:
            body["projects"] = projects
        answer = self._check(self._http.post("/v1/principals", json=body))
        if not isinstance(answer, dict) or not isinstance(answer.get("registered_at"), str):
            raise NotaryError(502, "the notary's answer to a binding is not a principal with its registered_at")
        try:
            bound = Principal.parse({k: v for k, v in answer.items() if k != "registered_at"}, "the notary's answer")
        except AccessConfigError as exc:
            raise NotaryError(502, f"the notary's answer to a binding does not hold: {exc}") from exc
        if (bound.principal_id, bound.role.value, bound.public_key) != (key.principal_id, role, key.public_pem()):
            raise NotaryError(502, f"the notary answered the binding of {bound.describe()}, not of "
                                   f"{key.principal_id} as {role} with this key")
        return bound

    def submit(
        self, submitter: SubmitterKey, records: list[dict[str, Any]], disclosures: list[dict[str, Any]] | None = None
    ) -> list[Receipt]:
        """Submit one signed batch; return its receipts, one per record in order, each checked (signed by the
        notary for exactly that record). A receipt is a promise: `check_included` checks it was kept."""
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
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            response = self._http.post("/v1/records", content=content, headers={"content-type": "application/json"},
                                       auth=auth)
            wait = _busy_wait(response)
            if wait is None or attempt == BUSY_ATTEMPTS:
                break
            time.sleep(wait)  # the notary is full (admission control): the same batch again, signed anew
        answer = self._check(response)
        receipts = complete_receipts(answer.get("receipts") if isinstance(answer, dict) else None)
        self.check_receipts(records, receipts)
        return receipts

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self._http.get(path, params=params))

    def extract(self, project_id: str, disclose: bool = False) -> bytes:
        response = self._http.get(f"/v1/projects/{project_id}/extract", params={"disclose": disclose})
        self._check(response)
        return response.content
