"""Hostile bodies are refused before any other work: a body over the limit gets a 413 as soon as its
declared length or the bytes read so far exceed it (the rest is never read), one that takes longer than
`body_seconds` to arrive gets a 408, and a JSON body holding
NaN or Infinity (which JSON does not have, but Python's parser accepts) or an object with a repeated key
(which parsers resolve differently) gets a 422 naming it.
Used by the notary and the hub alike, as ASGI middleware in front of everything else."""

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


class _Refused(ValueError):
    pass


def _non_finite(token: str) -> Any:
    raise _Refused(f"{token} is not a JSON number; NaN and Infinity are refused anywhere in a body")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(f"key {repeated[:64]!r} appears twice in one object")
    return obj


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# Where the body's JSON, once parsed here, is handed on (in the ASGI scope) so that it is not parsed twice.
PARSED_BODY = "bidtrace.parsed_body"
BODY_SECONDS = 60.0  # the longest a whole body may take to arrive; a slower one holds a worker for nothing


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_seconds: float = BODY_SECONDS) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _answer(send, 413, f"the body is {int(declared)} bytes; this service takes at most {limit}")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            # One deadline for the whole body: one sent a byte at a time (or not at all after its headers)
            # would otherwise hold the connection and its buffer open indefinitely.
            async with asyncio.timeout(self.body_seconds):
                while more and size <= limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _answer(send, 408, f"the body did not arrive within {self.body_seconds:g} seconds")
            return
        if size > limit:
            await _answer(send, 413, f"the body exceeds {limit} bytes, the most this service takes")
            return
        body = b"".join(chunks)
        if body and b"json" in headers.get(b"content-type", b"json"):
            try:
                scope[PARSED_BODY] = json.loads(body, parse_constant=_non_finite, object_pairs_hook=_unique)
            except _Refused as exc:
                await _answer(send, 422, f"body: {exc}")
                return
            except ValueError:
                pass  # other malformed JSON is the framework's to report, with its location

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
