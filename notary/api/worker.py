"""The HTTP worker processes of a notary served by several (`bidtrace notary serve --workers N`).

Each worker listens on the same port (SO_REUSEPORT, the kernel spreads connections) and serves the
whole API; it checks each submission itself and hands the checked ones to the parent's sequencer
(`notary.sequencer`) over a socket pair of its own, so concurrent submissions share commits whichever
worker received them. Sealing and anchoring run only in the parent, which publishes its status for the
workers' /healthz, restarts a worker that dies, and stops them all on SIGTERM or SIGINT. A worker whose
parent or sequencer is gone stops too (answering 503 to the submissions it was holding).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Final

import uvicorn

from notary.api.app import create_app
from notary.sequencer import Sequencer, SequencerClient
from notary.server import listen
from notary.service import Notary, NotaryConfig

# Measured in bench/RESULTS.md: uvloop and httptools take about a fifth less CPU per one-record POST
# than asyncio's loop and h11.
LOOP: Final = "uvloop"
HTTP: Final = "httptools"


SEQUENCER_FD: Final = "BIDTRACE_SEQUENCER_FD"  # the worker's end of its socket pair to the sequencer
SUPERVISOR: Final = "BIDTRACE_SUPERVISOR"  # the process id of the worker's supervisor


def serve_worker(host: str, port: int) -> None:
    # The supervisor names itself: it may be gone before this process asks for its parent.
    parent = int(os.environ[SUPERVISOR])
    sequencer_gone = threading.Event()
    sequencer = SequencerClient(socket.socket(fileno=int(os.environ[SEQUENCER_FD])), on_gone=sequencer_gone.set)
    notary = Notary(NotaryConfig(), committer=sequencer)
    app = create_app(notary, start_sealer=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", loop=LOOP, http=HTTP))

    def watch() -> None:
        while not sequencer_gone.wait(0.2) and os.getppid() == parent:
            pass
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.run(sockets=[listen(host, port, shared=True)])
    finally:
        notary.close()


def supervise(host: str, port: int, workers: int, sequencer: Sequencer) -> None:
    """Run `workers` worker processes, each connected to `sequencer`, until SIGTERM or SIGINT (the caller
    seals and anchors meanwhile)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}

    def start() -> subprocess.Popen[bytes]:
        end = sequencer.connect()
        try:
            return subprocess.Popen([sys.executable, "-m", "notary.api.worker", host, str(port)],
                                    pass_fds=[end.fileno()],
                                    env={**os.environ, SEQUENCER_FD: str(end.fileno()), SUPERVISOR: str(os.getpid())})
        finally:
            end.close()  # the worker holds its own copy

    procs = [start() for _ in range(workers)]
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                if proc.poll() is not None:
                    print(f"notary worker {proc.pid} exited with {proc.returncode}; starting another", file=sys.stderr)
                    procs[i] = start()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    serve_worker(sys.argv[1], int(sys.argv[2]))
