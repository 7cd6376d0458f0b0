"""The supervision feed: every evidence event of a project, signed, delivered in order after the receiver
was down for a while; devices' evidence included."""

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notary.access import Principal, PrincipalKey, Role
from notary.client import SubmitterKey
from notary.server import free_port
from tests.conftest import device_bindings, wait_until
from tests.hub.conftest import MAIN, PROJECT, YT, Stack, setup_session

SECRET = "supervision-shared-secret"


class Receiver:
    """The supervision platform's webhook endpoint: a real HTTP server that can go down and come back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Bidtrace-Signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                else:
                    receiver.events.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None


def test_webhooks_in_order_after_receiver_outage(stack: Stack) -> None:
    st = stack
    receiver = Receiver(free_port())
    try:
        setup_session(st)
        # Subscribed while the receiver is down: the project's earlier events come first.
        # The supervision platform's endpoint is registered with the supervisor's binding; only it is accepted.
        endpoint = f"http://127.0.0.1:{receiver.port}/hook"
        platform = PrincipalKey.generate("supervision-platform")
        st.hub.principals.bind(Principal(platform.principal_id, Role.SUPERVISOR, platform.public_pem(),
                                         endpoints=frozenset({endpoint})))
        sub = st.as_key(platform).call("POST", "/subscriptions", {"project_id": PROJECT, "url": endpoint,
                                                                  "secret": SECRET}, 201)
        camera = SubmitterKey.generate(f"{YT}.cam1")
        st.admin.register(camera, "device", *device_bindings(camera.principal_id))
        for i in range(3):
            st.call("POST", "/sessions/S-1/incidents", {"venue_id": MAIN, "kind": "device_failure",
                                                        "description": f"终端 {i} 故障",
                                                        "started_at": "2026-11-26T10:00:00+08:00"}, 201)
            device_record = {"type": "incident", "project_id": PROJECT, "session_id": "S-1", "venue_id": YT,
                             "device_id": camera.submitter_id,
                             "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                             "payload": {"incident_id": f"DEV-{i}", "kind": "device_failure",
                                         "description": f"camera frame drop {i}",
                                         "started_at": "2026-11-26T10:00:00+08:00"}}
            st.admin.submit(camera, [device_record])
        expected = [seq for seq, _ in st.notary.log.entries(project_id=PROJECT, limit=1000)]
        assert len(expected) == 3 + 2 + 6  # reserved, 2 offers, 2 confirmations, 3 hub and 3 device incidents

        def state() -> Any:
            return st.call("GET", f"/subscriptions/{sub['subscription_id']}")

        wait_until(lambda: state()["queued"] == len(expected), 15, "every event to be queued")
        wait_until(lambda: (state()["next"] or {}).get("attempts", 0) >= 3, 15, "retries while the receiver is down")
        assert state()["delivered"] == 0 and "ConnectError" in state()["next"]["last_error"]

        receiver.start()
        wait_until(lambda: state()["delivered"] == len(expected), 20, "delivery after the receiver came back")
        assert receiver.bad_signatures == 0
        assert [e["sequence"] for e in receiver.events] == list(range(1, len(expected) + 1))
        assert [e["leaf_index"] for e in receiver.events] == expected
        assert any(e["record"]["device_id"] == camera.submitter_id for e in receiver.events)
        first = receiver.events[0]
        assert first["receipt"]["leaf_hash"] == first["leaf_hash"] and first["record"]["type"] == "booking"

        # Down again, more evidence, back up: still in order, nothing lost or repeated.
        receiver.stop()
        st.call("POST", "/sessions/S-1/objections", {"filed_by": "某投标人", "summary": "质疑"}, 201)
        wait_until(lambda: state()["queued"] == len(expected) + 1, 15, "the new event to be queued")
        wait_until(lambda: (state()["next"] or {}).get("attempts", 0) >= 2, 15, "retries")
        receiver.start()
        wait_until(lambda: state()["delivered"] == len(expected) + 1, 20, "delivery")
        assert [e["sequence"] for e in receiver.events] == list(range(1, len(expected) + 2))
        objection = receiver.events[-1]["record"]
        assert objection["type"] == "objection" and "某投标人" not in json.dumps(objection, ensure_ascii=False)
    finally:
        receiver.stop()
