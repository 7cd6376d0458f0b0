"""Signing in to the web console with a principal's own key, and the browser sessions that follow.

A browser cannot comfortably hold the ECDSA or Ed25519 key a principal signs its API requests with, so the
key stays where it is: `bidtrace hub login` signs one request (RFC 9421, as every API call) asking for a
login link; the hub answers with a random one-time code, valid for `LOGIN_SECONDS`, bound to the principal
and its key. Opening the link and confirming exchanges the code, once, for a server-side session: the
browser holds only a random token in an HttpOnly, SameSite=Strict cookie (Secure over TLS); the hub keeps
SHA-256 digests of codes and tokens, never the values. Each request re-reads the principal from the hub's
registry: a revoked principal, or one bound to another key since, has no session any more. Every form
carries the session's CSRF token.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import httpx
from sqlalchemy import delete, update

from hub import db
from hub.service import Hub
from notary.access import Caller, Principal, PrincipalKey, Role, SignedRequests, key_digest

LOGIN_SECONDS = 120
SESSION_SECONDS = 8 * 3600  # a working day, at most
IDLE_SECONDS = 30 * 60
COOKIE = "bidtrace_console"
LOGIN_PATH = "/console/login"
PURPOSE = "web console"  # the purpose access records give for reads made in the console


class LoginRefused(Exception):
    """A login code or session that cannot be used; the message says why, without echoing the code."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_login(hub: Hub, caller: Caller) -> tuple[str, float]:
    """A one-time code for the signed-in `caller` and when it expires. Devices are not people: refused."""
    principal = caller.principal
    if principal is None:
        raise LoginRefused("a login link needs a request signed with a registered principal's key")
    if principal.role is Role.DEVICE:
        raise LoginRefused(f"{principal.describe()} is a device; the console is for people")
    code = secrets.token_urlsafe(32)
    now = time.time()
    with hub.db() as s:
        s.execute(delete(db.ConsoleLogin).where(db.ConsoleLogin.expires_at < now))
        s.execute(delete(db.ConsoleSessionRow).where(db.ConsoleSessionRow.expires_at < now))
        s.add(db.ConsoleLogin(code_sha256=_digest(code), principal_id=principal.principal_id,
                              key_digest=key_digest(principal.public_key), expires_at=now + LOGIN_SECONDS,
                              used=False))
        s.commit()
    return code, now + LOGIN_SECONDS


def _current(hub: Hub, principal_id: str, digest: str) -> Principal:
    principal = hub.principals.get(principal_id)
    if principal is None or key_digest(principal.public_key) != digest:
        raise LoginRefused(f"principal {principal_id} is no longer registered with this hub under the key it "
                           "signed in with")
    return principal


def pending_login(hub: Hub, code: str) -> Principal:
    """The principal a code would sign in, without using it (for the confirmation page)."""
    with hub.db() as s:
        row = s.get(db.ConsoleLogin, _digest(code))
        if row is None or row.used or row.expires_at < time.time():
            raise LoginRefused("this login link is unknown, already used or expired (links last "
                               f"{LOGIN_SECONDS} seconds); ask for a new one with `bidtrace hub login`")
        return _current(hub, row.principal_id, row.key_digest)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who, and the token every form must carry back."""

    caller: Caller
    csrf: str
    token_sha256: str


def redeem_login(hub: Hub, code: str) -> tuple[str, ConsoleSession]:
    """Use the code (once) and open a session; return the cookie token and the session."""
    now = time.time()
    with hub.lock, hub.db() as s:
        # One UPDATE marks the code used only if it was unused and unexpired: two redemptions cannot both win.
        used = s.execute(update(db.ConsoleLogin).where(
            db.ConsoleLogin.code_sha256 == _digest(code), db.ConsoleLogin.used.is_(False),
            db.ConsoleLogin.expires_at >= now).values(used=True))
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise LoginRefused("this login link is unknown, already used or expired; ask for a new one with "
                               "`bidtrace hub login`")
        row = s.get(db.ConsoleLogin, _digest(code))
        assert row is not None
        principal = _current(hub, row.principal_id, row.key_digest)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        s.add(db.ConsoleSessionRow(token_sha256=_digest(token), principal_id=principal.principal_id,
                                key_digest=row.key_digest, csrf=csrf, created_at=now, last_seen=now,
                                expires_at=now + SESSION_SECONDS, ended=False))
        s.commit()
    return token, ConsoleSession(Caller(principal, PURPOSE), csrf, _digest(token))


def session_of(hub: Hub, token: str | None) -> ConsoleSession | None:
    """The live session a cookie token names, or None (never signed in, ended, expired, idle, or its
    principal revoked)."""
    if not token:
        return None
    now = time.time()
    with hub.db() as s:
        row = s.get(db.ConsoleSessionRow, _digest(token))
        if row is None or row.ended or row.expires_at < now or row.last_seen + IDLE_SECONDS < now:
            return None
        try:
            principal = _current(hub, row.principal_id, row.key_digest)
        except LoginRefused:
            row.ended = True
            s.commit()
            return None
        if now - row.last_seen > 60:  # idle time to the minute; no write on every request
            row.last_seen = now
            s.commit()
        return ConsoleSession(Caller(principal, PURPOSE), row.csrf, row.token_sha256)


def end_session(hub: Hub, session: ConsoleSession) -> None:
    with hub.db() as s:
        row = s.get(db.ConsoleSessionRow, session.token_sha256)
        if row is not None:
            row.ended = True
            s.commit()


def csrf_holds(session: ConsoleSession, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(token.encode(), session.csrf.encode())


def request_login_link(hub_url: str, key: PrincipalKey, timeout: float = 30.0) -> str:
    """Ask the hub at `hub_url`, with a request signed by `key`, for a one-time login link (the CLI's part)."""
    try:
        with httpx.Client(base_url=hub_url, timeout=timeout, auth=SignedRequests(key)) as client:
            response = client.post(f"{LOGIN_PATH}-links")
    except httpx.HTTPError as exc:
        raise LoginRefused(f"the hub at {hub_url} cannot be reached ({exc})") from exc
    if response.status_code != 201:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise LoginRefused(f"the hub refused a login link ({response.status_code}): {detail}")
    link: str = response.json()["url"]
    return link
