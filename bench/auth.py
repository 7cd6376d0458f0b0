"""Cost of authenticating one request (RFC 9421 signature over method, authority, path, query and an
RFC 9530 Content-Digest, a time window and a nonce), in process, without HTTP: what the notary and the
hub add to every signed request. `python -m bench.auth`."""

import statistics
import time
from collections.abc import Callable
from hashlib import sha256

import httpx

from bench.ingest import signed_bodies
from notary.access import Authenticator, Registry, Role, SignedMessage, SignedRequests
from notary.client import SubmitterKey


def _time(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n)
    return statistics.median(samples)


def measure(key: SubmitterKey, body: bytes, n: int) -> tuple[float, float, float, float]:
    """Seconds to sign one request; to authenticate one as the server does (the profile path); to authenticate
    one through the general library alone, as before the profile path; and to hash its body."""
    from unittest import mock

    auth = Authenticator(Registry([key.principal(Role.DEVICE, "V-1", "recorder")]))
    signer = SignedRequests(key)

    def sign() -> httpx.Request:
        request = httpx.Request("POST", "http://127.0.0.1:8400/v1/records", content=body,
                                headers={"content-type": "application/json"})
        signer.sign(request)
        return request

    signed = iter([sign() for _ in range(n * 14)])  # each verified once: a nonce is good for one request

    def verify() -> None:
        request = next(signed)
        auth.authenticate(SignedMessage(request.method, str(request.url), request.headers), body)

    def verify_library() -> None:
        with mock.patch("notary.access.verify_profile", lambda *_: None):
            verify()

    # Rounds of the two interleaved, so that a machine busy with something else weighs on both alike.
    now, before = [], []
    for _ in range(7):
        now.append(_time(verify, n, rounds=1))
        before.append(_time(verify_library, n, rounds=1))
    return (_time(sign, n), statistics.median(now), statistics.median(before),
            _time(lambda: sha256(body).digest(), n))


def main() -> None:
    print("| key | body | sign (client) | verify (server) | verify (library alone, before) | of which body digest |")
    print("|---|---|---|---|---|---|")
    for algorithm in ("ecdsa-p256-sha256", "ed25519"):
        key = SubmitterKey.generate("V-1.cam1", algorithm)
        for batch in (1, 1000):
            body = signed_bodies(key, "V-1", batch, 1)[0]
            signing, verifying, library, digest = measure(key, body, 300 if batch == 1 else 60)
            print(f"| {algorithm} | {batch} record(s), {len(body) / 1024:.0f} KiB | {signing * 1e6:.0f} µs "
                  f"| {verifying * 1e6:.0f} µs | {library * 1e6:.0f} µs | {digest * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
