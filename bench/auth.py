"""Cost of authenticating one request (RFC 9421 signature over method, authority, path, query and an
RFC 9530 Content-Digest, a time window and a nonce), in process, without HTTP: what the notary and the
hub add to every signed request. `python -m bench.auth`."""

import json
import statistics
import time
from typing import Any

import httpx

from bench.ingest import segment_records, signed_bodies
from notary.access import Authenticator, Registry, Role, SignedMessage, SignedRequests
from notary.client import SubmitterKey


def _time(fn: Any, n: int) -> float:
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n)
    return statistics.median(samples)


def main() -> None:
    print("| key | body | sign (client) | verify (server) | of which body digest |")
    print("|---|---|---|---|---|")
    for algorithm in ("ecdsa-p256-sha256", "ed25519"):
        key = SubmitterKey.generate("V-1.cam1", algorithm)
        auth = Authenticator(Registry([key.principal(Role.DEVICE, "V-1", "recorder")]))
        signer = SignedRequests(key)
        for batch in (1, 1000):
            body = signed_bodies(key, "V-1", batch, 1)[0]
            assert json.loads(body)["records"] == segment_records(key.submitter_id, "V-1", batch, 0)
            n = 300 if batch == 1 else 60

            def sign() -> httpx.Request:
                request = httpx.Request("POST", "http://127.0.0.1:8400/v1/records", content=body,
                                        headers={"content-type": "application/json"})
                signer.sign(request)
                return request

            requests = [sign() for _ in range(n * 5)]
            it = iter(requests)

            def verify() -> None:
                request = next(it)
                auth.authenticate(SignedMessage(request.method, str(request.url), request.headers), body)

            from hashlib import sha256

            signing, verifying = _time(sign, n), _time(verify, n)
            digest = _time(lambda: sha256(body).digest(), n)
            print(f"| {algorithm} | {batch} record(s), {len(body) / 1024:.0f} KiB | {signing * 1e6:.0f} µs "
                  f"| {verifying * 1e6:.0f} µs | {digest * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
