"""During and after the evaluation: check-ins and the roster, cloud signatures, expert fees, incidents,
the session timeline and the archive (归档)."""

import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import db
from hub.api.models import CheckInReportIn, FeeIn, IncidentIn, IncidentResolveIn, SignatureIn
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.service import Hub
from hub.workflows.bookings import venues_of
from verifier.cases import OBJECTION_OPEN
from verifier.commitments import commit
from verifier.face import identity_verified
from verifier.times import parse_time

MAX_PAGES = 10_000


def _selection(s: Session, session_id: str, expert_id: str) -> db.Selection:
    sel = s.scalars(select(db.Selection).where(db.Selection.session_id == session_id,
                                               db.Selection.expert_id == expert_id,
                                               db.Selection.status == "selected")).first()
    if sel is None:
        raise Conflict(f"expert {expert_id} is not a drawn expert of session {session_id}")
    return sel


def _present(s: Session, session_id: str, expert_id: str, what: str) -> db.CheckIn:
    row = s.scalars(select(db.CheckIn).where(db.CheckIn.session_id == session_id, db.CheckIn.expert_id == expert_id)
                    .order_by(db.CheckIn.leaf.desc())).first()
    if row is None or row.result == "rejected":
        raise Conflict(f"expert {expert_id} has not checked in for session {session_id}; {what}")
    return row


# ----- check-ins and roster -----

def report_checkin(hub: Hub, session_id: str, body: CheckInReportIn, by_venue: str | None) -> dict[str, Any]:
    """A venue's check-in station wrote a `checkin` record; the hub takes it into the session roster.
    `by_venue` is the venue of the reporting station or operator (None: the province)."""
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        sel = _selection(s, session_id, body.expert_id)
        if by_venue is not None and by_venue != sel.venue_id:
            raise Forbidden(f"expert {body.expert_id} sits in {sel.venue_id}; {by_venue} may not report their check-in")
        try:
            found = hub.notary_get(f"/v1/records/{body.checkin_leaf}")
        except NotFound as exc:
            raise Invalid(f"check-in leaf {body.checkin_leaf} is not in the notary's log") from exc
        record = found["entry"]["record"]
        if record.get("type") != "checkin":
            raise Invalid(f"leaf {body.checkin_leaf} is a {record.get('type')} record, not a check-in")
        if (record.get("project_id"), record.get("session_id")) != (session.project_id, session_id):
            raise Invalid(f"leaf {body.checkin_leaf} belongs to {record.get('project_id')}/{record.get('session_id')}, "
                          f"not to {session.project_id}/{session_id}")
        if record.get("venue_id") != sel.venue_id:
            raise Conflict(f"expert {body.expert_id} sits in {sel.venue_id} but leaf {body.checkin_leaf} is a "
                           f"check-in at {record.get('venue_id')}")
        attached = s.scalars(select(db.CheckIn).where(db.CheckIn.leaf == body.checkin_leaf)).first()
        if attached is not None:
            if (attached.session_id, attached.expert_id) != (session_id, body.expert_id):
                raise Conflict(f"the check-in at leaf {body.checkin_leaf} is already attached to expert "
                               f"{attached.expert_id} of session {attached.session_id}; one check-in serves "
                               "exactly one expert")
            if body.salt is None or attached.identity_checked:
                return _checkin_view(attached)  # the same report again (a station retrying): nothing new
        checked = False
        if body.salt is not None:
            expert: db.Expert = hub.get(s, db.Expert, body.expert_id, "expert")
            if commit(bytes.fromhex(body.salt), expert.identity_number) != record["payload"].get("expert_commitment"):
                raise Invalid(f"the opening does not match: the check-in at leaf {body.checkin_leaf} is not of "
                              f"expert {body.expert_id}")
            checked = True
        # "identity verified" needs both: the record's face comparison says match, and the opening shows the
        # record is of this expert (else a matched check-in of anyone could be attached to an absent expert).
        verified = checked and identity_verified(record) is None
        if attached is not None:
            attached.identity_checked, attached.identity_verified = checked, verified
            row = attached
        else:
            row = db.CheckIn(session_id=session_id, expert_id=body.expert_id, venue_id=sel.venue_id,
                             leaf=body.checkin_leaf, result=str(record["payload"].get("result")),
                             identity_checked=checked, identity_verified=verified)
            s.add(row)
        s.commit()
        return _checkin_view(row)


def _checkin_view(row: db.CheckIn) -> dict[str, Any]:
    return {"expert_id": row.expert_id, "venue_id": row.venue_id, "checkin_leaf": row.leaf, "result": row.result,
            "identity_checked": row.identity_checked, "identity": _identity(row),
            "roster_status": _roster_label(_status(row), _identity(row))}


def _identity(row: db.CheckIn) -> str | None:
    if row.result == "rejected":
        return None
    return "verified" if row.identity_verified else "unverified"


def _status(row: db.CheckIn | None) -> str:
    if row is None:
        return "absent"
    return "rejected" if row.result == "rejected" else "present"


def _roster_label(status: str, identity: str | None) -> str:
    """How a roster entry reads to a person: "present" never stands alone, it says whether the face matched."""
    if status != "present":
        return status
    return "present — identity verified" if identity == "verified" else "present — unverified"


def record_roster(hub: Hub, session_id: str) -> dict[str, Any]:
    """Write the session roster: each drawn expert, the venue, and the check-in leaf (or absent)."""
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        selections = s.scalars(select(db.Selection).where(db.Selection.session_id == session_id)
                               .order_by(db.Selection.id)).all()
        if not selections:
            raise Conflict(f"session {session_id} has no drawn experts yet; draw before recording the roster")
        latest: dict[str, db.CheckIn] = {}
        # An expert's latest check-in in the log counts, whatever order the stations' reports arrived in.
        for row in s.scalars(select(db.CheckIn).where(db.CheckIn.session_id == session_id).order_by(db.CheckIn.leaf)):
            latest[row.expert_id] = row
        entries = []
        for sel in selections:
            c = latest.get(sel.expert_id)
            status = "replaced" if sel.status == "replaced" else _status(c)
            entry: dict[str, Any] = {"expert_id": sel.expert_id, "venue_id": sel.venue_id, "draw_id": sel.draw_id,
                                     "status": status}
            if c is not None:
                entry["checkin_leaf"] = c.leaf
            if status == "present" and c is not None:
                entry["identity"] = _identity(c)
            entries.append(entry)
        roster_id = hub.next_id(s, "R")
        receipt = hub.write(s, session, "roster", session.main_venue_id, {"roster_id": roster_id, "experts": entries})
        s.commit()
        shown = [{**e, "roster_status": _roster_label(e["status"], e.get("identity"))} for e in entries]
        return {"roster_id": roster_id, "leaf_index": receipt.leaf_index, "experts": shown}


# ----- cloud signatures (云签) -----

def trusted_cas(hub: Hub) -> list[x509.Certificate]:
    folder = hub.config.trusted_ca_dir
    if not folder.is_dir():
        return []
    return [x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(folder.glob("*.pem"))]


def add_trusted_ca(hub: Hub, pem: str, by: str) -> dict[str, Any]:
    """Trust a CA for cloud signatures; the change is a registry record in the log before it takes effect."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise Invalid("pem is not a PEM X.509 certificate") from exc
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise Invalid("the certificate has no basic constraints; it is not a CA certificate") from exc
    if not constraints.ca:
        raise Invalid("the certificate is not a CA certificate (basic constraints CA:FALSE)")
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    with hub.lock, hub.db() as s:
        hub.write_registry(s, {"action": "ca_trusted", "subject": f"ca-{digest[:32]}", "by": by, "digest": digest})
        s.commit()
    hub.config.trusted_ca_dir.mkdir(parents=True, exist_ok=True)
    (hub.config.trusted_ca_dir / f"{digest}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"ca_sha256": digest, "subject": cert.subject.rfc4514_string()}


def _verify_signer(hub: Hub, body: SignatureIn) -> tuple[x509.Certificate, x509.Certificate]:
    try:
        cert = x509.load_pem_x509_certificate(body.certificate_pem.encode())
    except ValueError as exc:
        raise Invalid("certificate_pem is not a PEM X.509 certificate") from exc
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise Invalid("the signer's certificate does not hold an ECDSA P-256 key")
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Invalid(f"the signer's certificate is valid only from {cert.not_valid_before_utc.isoformat()} "
                      f"to {cert.not_valid_after_utc.isoformat()}")
    issuer = None
    for ca in trusted_cas(hub):
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        issuer = ca
        break
    if issuer is None:
        raise Invalid("the signer's certificate was not issued by a trusted CA "
                      f"(issuer {cert.issuer.rfc4514_string()})")
    try:
        key.verify(bytes.fromhex(body.signature), bytes.fromhex(body.document_sha256),
                   ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature as exc:
        raise Invalid(f"the signature does not verify over document {body.document_sha256} with the key of the "
                      "signer's certificate") from exc
    return cert, issuer


def record_signature(hub: Hub, session_id: str, body: SignatureIn) -> dict[str, Any]:
    """Verify a cloud signature (ECDSA P-256 over the document whose SHA-256 is given, by a certificate of a
    trusted CA) and record it. The certificate names the signer, so it stays in the hub; the record holds
    its SHA-256 (of the DER) and the signer as a commitment."""
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        sel = _selection(s, session_id, body.expert_id)
        _present(s, session_id, body.expert_id, "only experts present may sign")
        cert, ca = _verify_signer(hub, body)
        der = cert.public_bytes(serialization.Encoding.DER)
        cert_sha = hashlib.sha256(der).hexdigest()
        expert: db.Expert = hub.get(s, db.Expert, body.expert_id, "expert")
        payload = {
            "document_sha256": body.document_sha256, "certificate_sha256": cert_sha, "algorithm": "ecdsa-p256-sha256",
            "signature": body.signature,
            "ca_sha256": hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest(),
        }
        attachment = {"name": f"signer-{cert_sha[:16]}.cer", "sha256": cert_sha, "size": len(der),
                      "media_type": "application/pkix-cert"}
        receipt = hub.write(s, session, "signature", sel.venue_id, payload,
                            personal={"signer_commitment": expert.identity_number}, attachments=[attachment])
        s.add(db.SignatureRow(session_id=session_id, expert_id=body.expert_id, document_sha256=body.document_sha256,
                              certificate_sha256=cert_sha, certificate_pem=body.certificate_pem,
                              leaf=receipt.leaf_index))
        s.commit()
        return {"expert_id": body.expert_id, "document_sha256": body.document_sha256,
                "certificate_sha256": cert_sha, "leaf_index": receipt.leaf_index}


# ----- fees (专家费支付) -----

def pay_fee(hub: Hub, session_id: str, body: FeeIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        sel = _selection(s, session_id, body.expert_id)
        _present(s, session_id, body.expert_id, "no fee is due")
        paid = s.scalars(select(db.Fee).where(db.Fee.session_id == session_id,
                                              db.Fee.expert_id == body.expert_id)).first()
        if paid is not None:
            raise Conflict(f"expert {body.expert_id} was already paid for session {session_id} "
                           f"(payment {paid.payment_id}, leaf {paid.leaf})")
        expert: db.Expert = hub.get(s, db.Expert, body.expert_id, "expert")
        payment_id = hub.next_id(s, "F")
        payload = {"payment_id": payment_id, "payer": body.payer, "amount_fen": body.amount_fen,
                   "reference": f"{session.project_id}/{session_id}/{body.expert_id}"}
        receipt = hub.write(s, session, "fee_payment", sel.venue_id, payload,
                            personal={"payee_commitment": expert.identity_number})
        s.add(db.Fee(payment_id=payment_id, session_id=session_id, expert_id=body.expert_id, payer=body.payer,
                     amount_fen=body.amount_fen, leaf=receipt.leaf_index))
        s.commit()
        return {"payment_id": payment_id, "expert_id": body.expert_id, "amount_fen": body.amount_fen,
                "leaf_index": receipt.leaf_index}


# ----- incidents (突发事件) -----

def incident_view(i: db.Incident) -> dict[str, Any]:
    return {"incident_id": i.incident_id, "session_id": i.session_id, "venue_id": i.venue_id, "kind": i.kind,
            "description": i.description, "started_at": i.started_at, "ended_at": i.ended_at,
            "new_main_venue_id": i.new_main_venue_id, "affected_device_id": i.affected_device_id, "leaves": i.leaves}


def _incident_payload(i: db.Incident) -> dict[str, Any]:
    payload: dict[str, Any] = {"incident_id": i.incident_id, "kind": i.kind, "description": i.description,
                               "started_at": i.started_at}
    for name in ("ended_at", "new_main_venue_id", "affected_device_id"):
        if getattr(i, name) is not None:
            payload[name] = getattr(i, name)
    return payload


def record_incident(hub: Hub, session_id: str, body: IncidentIn) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        venues = venues_of(s, session)
        if body.venue_id not in venues:
            raise Invalid(f"venue {body.venue_id} takes no part in session {session_id} ({', '.join(venues)})")
        if body.kind == "main_venue_switch":
            if body.new_main_venue_id is None:
                raise Invalid("a main_venue_switch names new_main_venue_id")
            if body.new_main_venue_id == session.main_venue_id or body.new_main_venue_id not in venues:
                raise Conflict(f"{body.new_main_venue_id} cannot become the main venue of session {session_id}: "
                               f"it must be one of its confirmed secondary venues "
                               f"({', '.join(v for v in venues if v != session.main_venue_id)})")
        elif body.new_main_venue_id is not None:
            raise Invalid("new_main_venue_id belongs only to a main_venue_switch")
        if body.ended_at is not None and \
                parse_time(body.ended_at, "ended_at") < parse_time(body.started_at, "started_at"):
            raise Invalid(f"ended_at {body.ended_at} is before started_at {body.started_at}")
        incident = db.Incident(
            incident_id=hub.next_id(s, "I"), session_id=session_id, venue_id=body.venue_id, kind=body.kind,
            description=body.description, started_at=body.started_at, ended_at=body.ended_at,
            new_main_venue_id=body.new_main_venue_id, affected_device_id=body.affected_device_id, leaves=[])
        receipt = hub.write(s, session, "incident", body.venue_id, _incident_payload(incident))
        incident.leaves = [receipt.leaf_index]
        s.add(incident)
        if body.kind == "main_venue_switch" and body.new_main_venue_id:
            session.main_venue_id = body.new_main_venue_id
            for o in s.scalars(select(db.Objection).where(db.Objection.session_id == session_id,
                                                          db.Objection.status.in_(OBJECTION_OPEN))):
                o.lead_venue_id = body.new_main_venue_id
        s.commit()
        return incident_view(incident)


def resolve_incident(hub: Hub, incident_id: str, body: IncidentResolveIn, by_venue: str | None) -> dict[str, Any]:
    with hub.lock, hub.db() as s:
        incident: db.Incident = hub.get(s, db.Incident, incident_id, "incident")
        if by_venue is not None and by_venue != incident.venue_id:
            raise Forbidden(f"incident {incident_id} is {incident.venue_id}'s; {by_venue} may not resolve it")
        session = hub.open_session(s, incident.session_id)
        if incident.ended_at is not None:
            raise Conflict(f"incident {incident_id} already ended at {incident.ended_at}")
        if parse_time(body.ended_at, "ended_at") < parse_time(incident.started_at, "started_at"):
            raise Invalid(f"ended_at {body.ended_at} is before the incident started ({incident.started_at})")
        incident.ended_at = body.ended_at
        receipt = hub.write(s, session, "incident", incident.venue_id, _incident_payload(incident))
        incident.leaves = [*incident.leaves, receipt.leaf_index]
        s.commit()
        return incident_view(incident)


# ----- timeline and archive -----

def timeline(hub: Hub, session_id: str) -> list[dict[str, Any]]:
    """Every piece of evidence of the session the hub has seen (its own at once, devices' as the feed reads
    the notary log), in log order."""
    with hub.db() as s:
        hub.get(s, db.EvalSession, session_id, "session")
        rows = s.scalars(select(db.EvidenceRow).where(db.EvidenceRow.session_id == session_id)
                         .order_by(db.EvidenceRow.leaf_index)).all()
        return [{"leaf_index": r.leaf_index, "type": r.type, "occurred_at": r.occurred_at,
                 "venue_id": r.record.get("venue_id"), "device_id": r.record.get("device_id"),
                 "payload": r.record.get("payload")} for r in rows]


def archive(hub: Hub, session_id: str) -> dict[str, Any]:
    """Write the archive record listing every leaf of the session, read from the notary's log itself."""
    with hub.lock, hub.db() as s:
        session = hub.open_session(s, session_id)
        open_ = s.scalars(select(db.Objection).where(db.Objection.session_id == session_id,
                                                     db.Objection.status.in_(OBJECTION_OPEN))).all()
        if open_:
            listed = ", ".join(f"{o.objection_id} ({o.status})" for o in open_)
            raise Conflict(f"session {session_id} has open objections: {listed}; it cannot be archived until "
                           "they are answered")
        leaves: list[int] = []
        hashes: list[str] = []
        after = -1
        for _ in range(MAX_PAGES):
            page = hub.notary_get("/v1/records", project_id=session.project_id, after=after, limit=1000)
            for r in page["records"]:
                if r["entry"]["record"].get("session_id") == session_id:
                    leaves.append(int(r["leaf_index"]))
                    hashes.append(str(r["leaf_hash"]))
            if page.get("next_after") is None:
                break
            after = int(page["next_after"])
        archive_id = f"A-{session_id}"
        receipt = hub.write(s, session, "archive", session.main_venue_id,
                            {"archive_id": archive_id, "leaves": leaves, "leaf_hashes": hashes})
        session.status, session.archive_leaf = "archived", receipt.leaf_index
        s.commit()
        return {"archive_id": archive_id, "leaf_index": receipt.leaf_index, "leaves": leaves}
