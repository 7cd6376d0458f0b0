"""A supervisor's intake endpoint for forwarded misconduct cases (转送), as the supervision platform runs it:
it keeps each document it receives and answers with a receipt signed by the supervisor's key over the
document's SHA-256 (`verifier.cases.receipt_message`). The hub forwards only to a supervisor's registered
endpoints and records a case as forwarded only when such a receipt holds. The demo runs one on loopback.
"""

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notary.client import SubmitterKey
from notary.server import free_port
from verifier.cases import receipt_message

MAX_DOCUMENT = 1024 * 1024


class SupervisorIntake:
    """Serves on 127.0.0.1 from a thread until `close`; `endpoint` is the URL to register for the supervisor."""

    def __init__(self, key: SubmitterKey) -> None:
        self.key = key
        self.documents: list[bytes] = []
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}/intake"
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if not 0 < length <= MAX_DOCUMENT:
                    self.send_error(413 if length else 411)
                    return
                answer = json.dumps(intake.acknowledge(self.rfile.read(length))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def digest(self, document: bytes) -> str:
        """The SHA-256 the receipt acknowledges."""
        return hashlib.sha256(document).hexdigest()

    def acknowledge(self, document: bytes) -> dict[str, str]:
        self.documents.append(document)
        digest = self.digest(document)
        received_at = datetime.now(UTC).isoformat(timespec="seconds")
        receipt_id = f"R-{len(self.documents)}"
        signature = self.key.sign(receipt_message(digest, receipt_id, received_at))
        return {"document_sha256": digest, "receipt_id": receipt_id, "received_at": received_at,
                "signature": base64.b64encode(signature).decode()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
