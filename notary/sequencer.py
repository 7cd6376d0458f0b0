"""The sequencer of a notary served by several worker processes (`notary serve --workers N`).

Each worker checks its submissions itself (parsing, schema, signatures) and hands the checked ones to the
sequencer in the supervising process, over a socket pair of its own. The sequencer appends them with the
log's group commit, so one group (one transaction, one fsync) spans every worker, and answers each with
what its worker needs to sign the receipts. A submission is answered only after its group committed.

The wire format is this module's alone: a frame is a 4-byte big-endian length and a body; a body starts
with its kind (1 byte) and its request number (8 bytes); numbers are 8-byte big-endian, byte strings and
text are length-prefixed. Each message has one encoder and one parser here.
"""

import contextlib
import itertools
import queue
import socket
import struct
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, BinaryIO

from notary.log import CommitCounts, Disclosure, EvidenceLog, RecordRejected, Submitter, _Appended, _Pending

APPEND, COUNTS = 1, 2  # from a worker: a checked submission; a question for the commit counts
APPENDED, REFUSED, COUNTED = 1, 2, 3  # from the sequencer: the answers
MAX_FRAME = 256 * 1024 * 1024  # a batch of 10,000 records of the largest size, with their batch paths

_HEAD = struct.Struct(">BQ")
_LENGTH = struct.Struct(">I")
_NUMBER = struct.Struct(">Q")


class WireError(ValueError):
    """A frame that is not a message of this format (a bug or a stranger on the socket, never data)."""


class _Message:
    """A message being encoded."""

    def __init__(self, kind: int, request: int) -> None:
        self._body = bytearray(_HEAD.pack(kind, request))

    def number(self, value: int) -> "_Message":
        self._body += _NUMBER.pack(value)
        return self

    def blob(self, value: bytes) -> "_Message":
        self._body += _LENGTH.pack(len(value))
        self._body += value
        return self

    def text(self, value: str) -> "_Message":
        return self.blob(value.encode())

    def frame(self) -> bytes:
        return _LENGTH.pack(len(self._body)) + self._body


class _Body:
    """A message being parsed: each read takes the next field, `done` checks nothing is left over."""

    def __init__(self, data: bytes) -> None:
        if len(data) < _HEAD.size:
            raise WireError(f"a message of {len(data)} bytes is shorter than its head")
        self._data = memoryview(data)
        self.kind, self.request = _HEAD.unpack_from(data)
        self._at = _HEAD.size

    def number(self) -> int:
        (value,) = _NUMBER.unpack_from(self._take(_NUMBER.size))
        return int(value)

    def blob(self) -> bytes:
        (length,) = _LENGTH.unpack_from(self._take(_LENGTH.size))
        return bytes(self._take(length))

    def text(self) -> str:
        return self.blob().decode()

    def done(self) -> None:
        if self._at != len(self._data):
            raise WireError(f"{len(self._data) - self._at} bytes left over after message kind {self.kind}")

    def _take(self, length: int) -> memoryview:
        if self._at + length > len(self._data):
            raise WireError(f"message kind {self.kind} is cut short")
        part = self._data[self._at:self._at + length]
        self._at += length
        return part


def encode_pending(request: int, pending: _Pending) -> bytes:
    sub = pending.submitter
    message = (_Message(APPEND, request).text(sub.submitter_id).text(sub.role).text(sub.public_key)
               .text(sub.registered_at).text(sub.revoked_at or "").text(pending.alg).text(pending.signature)
               .number(len(pending.canon)))
    for project_id, canon, record_hash, path in zip(
            pending.project_ids, pending.canon, pending.record_hashes, pending.paths, strict=True):
        message.text(project_id).blob(canon).blob(record_hash).blob(b"".join(path))
    disclosures = [d for index in sorted(pending.openings) for d in pending.openings[index]]
    message.number(len(disclosures))
    for d in disclosures:
        message.number(d.index).text(d.field).text(d.salt).text(d.value)
    return message.frame()


def parse_pending(body: _Body) -> _Pending:
    submitter = Submitter(body.text(), body.text(), body.text(), body.text(), body.text() or None)
    alg, signature = body.text(), body.text()
    project_ids: list[str] = []
    canon: list[bytes] = []
    record_hashes: list[bytes] = []
    paths: list[list[bytes]] = []
    for _ in range(body.number()):
        project_ids.append(body.text())
        canon.append(body.blob())
        record_hashes.append(body.blob())
        path = body.blob()
        paths.append([path[i:i + 32] for i in range(0, len(path), 32)])
    openings: dict[int, list[Disclosure]] = {}
    for _ in range(body.number()):
        d = Disclosure(body.number(), body.text(), body.text(), body.text())
        openings.setdefault(d.index, []).append(d)
    body.done()
    return _Pending(submitter=submitter, project_ids=project_ids, canon=canon, record_hashes=record_hashes,
                    paths=paths, alg=alg, signature=signature, openings=openings)


def encode_appended(request: int, pending: _Pending, appended: _Appended) -> bytes:
    message = _Message(APPENDED, request).text(appended.received_at).number(len(appended.members))
    for seq, lh, rh in appended.members:
        message.number(seq).blob(lh).blob(rh)
    for rh in pending.record_hashes:  # where each of the submission's records is, appended now or before
        message.number(appended.seq_of[rh])
    return message.frame()


def parse_appended(body: _Body, pending: _Pending) -> _Appended:
    received_at = body.text()
    members = [(body.number(), body.blob(), body.blob()) for _ in range(body.number())]
    seq_of = {rh: body.number() for rh in pending.record_hashes}
    body.done()
    return _Appended(members, received_at, seq_of)


def encode_refused(request: int, refusal: RecordRejected) -> bytes:
    return _Message(REFUSED, request).number(refusal.status).text(str(refusal)).frame()


def parse_refused(body: _Body) -> RecordRejected:
    status, message = body.number(), body.text()
    body.done()
    return RecordRejected(status, message)


def encode_counts(request: int, counts: CommitCounts) -> bytes:
    return _Message(COUNTED, request).number(counts.commits).number(counts.submissions).number(
        counts.across_workers).frame()


def parse_counts(body: _Body) -> CommitCounts:
    counts = CommitCounts(body.number(), body.number(), body.number())
    body.done()
    return counts


def read_frame(stream: BinaryIO) -> _Body | None:
    """The next message, or None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if not head:
        return None
    if len(head) < _LENGTH.size:
        raise WireError("the stream ends inside a frame's length")
    (length,) = _LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise WireError(f"a frame of {length} bytes is larger than {MAX_FRAME}")
    data = stream.read(length)
    if len(data) != length:
        raise WireError(f"the stream ends {length - len(data)} bytes before the end of a frame")
    return _Body(data)


class Sequencer:
    """Appends the workers' checked submissions with the log's group commit (in the supervising process)."""

    def __init__(self, log: EvidenceLog) -> None:
        self._log = log
        self._workers = itertools.count(1)  # 0 is the supervising process's own submissions

    def connect(self) -> socket.socket:
        """A new worker's end of its socket pair, to hand to the worker process; served from now on."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        worker = next(self._workers)
        threading.Thread(target=self._serve, args=(ours, worker), name=f"sequencer-{worker}", daemon=True).start()
        return theirs

    def _serve(self, sock: socket.socket, worker: int) -> None:
        answers: queue.Queue[bytes | None] = queue.Queue()
        # Answers are sent by a thread of their own, so that a worker slow to read never holds up a commit.
        threading.Thread(target=_send_answers, args=(sock, answers), name=f"sequencer-{worker}-answers",
                         daemon=True).start()
        try:
            with sock.makefile("rb") as stream:
                while (body := read_frame(stream)) is not None:
                    self._handle(body, worker, answers)
        except (OSError, ValueError) as exc:  # not this format (WireError, bad UTF-8): the worker is dropped
            print(f"notary sequencer: dropping worker {worker}: {exc}", file=sys.stderr)
        finally:
            answers.put(None)

    def _handle(self, body: _Body, worker: int, answers: "queue.Queue[bytes | None]") -> None:
        if body.kind == COUNTS:
            body.done()
            answers.put(encode_counts(body.request, self._log.commit_counts()))
            return
        if body.kind != APPEND:
            raise WireError(f"unknown message kind {body.kind}")
        request, pending = body.request, parse_pending(body)
        self._log.sequence(pending, worker).add_done_callback(
            lambda future: answers.put(_answer(request, pending, future)))


def _answer(request: int, pending: _Pending, future: "Future[_Appended]") -> bytes:
    failure = future.exception()
    if failure is None:
        return encode_appended(request, pending, future.result())
    if not isinstance(failure, RecordRejected):
        failure = RecordRejected(503, f"the notary's sequencer could not append ({type(failure).__name__}: "
                                      f"{failure}); resubmitting is safe: a record already in the log is answered "
                                      "with its receipt")
    return encode_refused(request, failure)


def _send_answers(sock: socket.socket, answers: "queue.Queue[bytes | None]") -> None:
    try:
        while (frame := answers.get()) is not None:
            sock.sendall(frame)
    except OSError:
        pass  # the worker is gone: it answers its clients no more, and they resubmit
    finally:
        sock.close()


class SequencerClient:
    """A worker's end: hands its checked submissions to the sequencer and waits for the answers. If the
    sequencer goes away, every waiting and later submission is refused with 503 (never left hanging) and
    `on_gone` is called, so that the worker stops and its supervisor starts another."""

    def __init__(self, sock: socket.socket, on_gone: Callable[[], None] = lambda: None) -> None:
        self._sock = sock
        self._on_gone = on_gone
        self._lock = threading.Lock()  # the waiting requests and whether the sequencer is gone
        self._send_lock = threading.Lock()
        self._numbers = itertools.count()
        self._waiting: dict[int, tuple[Future[Any], _Pending | None]] = {}
        self._gone: str | None = None
        self._reader = threading.Thread(target=self._read, name="sequencer-answers", daemon=True)
        self._reader.start()

    def commit(self, pending: _Pending, worker: int = 0) -> "Future[_Appended]":
        future: Future[_Appended] = Future()
        future.set_running_or_notify_cancel()  # answered whatever the caller does meanwhile
        self._ask(future, pending, lambda request: encode_pending(request, pending))
        return future

    def counts(self) -> CommitCounts:
        future: Future[CommitCounts] = Future()
        future.set_running_or_notify_cancel()
        self._ask(future, None, lambda request: _Message(COUNTS, request).frame())
        return future.result(timeout=30)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout=5)
        self._sock.close()

    def _ask(self, future: "Future[Any]", pending: _Pending | None, encode: Callable[[int], bytes]) -> None:
        with self._lock:
            gone, request = self._gone, next(self._numbers)
            if gone is None:
                self._waiting[request] = (future, pending)
        if gone is not None:
            future.set_exception(self._refusal(gone))
            return
        frame = encode(request)
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as exc:
            self._fail(f"sending to it failed: {exc}")

    def _read(self) -> None:
        reason = "it closed the connection"
        try:
            with self._sock.makefile("rb") as stream:
                while (body := read_frame(stream)) is not None:
                    with self._lock:
                        future, pending = self._waiting.pop(body.request)
                    if body.kind == REFUSED:
                        future.set_exception(parse_refused(body))
                    elif body.kind == APPENDED and pending is not None:
                        future.set_result(parse_appended(body, pending))
                    elif body.kind == COUNTED:
                        future.set_result(parse_counts(body))
                    else:
                        raise WireError(f"answer kind {body.kind} to request {body.request} of another kind")
        except (OSError, ValueError, KeyError) as exc:  # WireError, bad UTF-8, an answer to no request
            reason = f"its answers broke off: {exc!r}"
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._gone is not None:
                return
            self._gone = reason
            waiting, self._waiting = self._waiting, {}
        for future, _ in waiting.values():
            future.set_exception(self._refusal(reason))
        self._on_gone()

    @staticmethod
    def _refusal(reason: str) -> RecordRejected:
        return RecordRejected(
            503, f"the notary's sequencer is unavailable ({reason}); a submission waiting for it may or may not "
            "have been appended: resubmitting is safe, a record already in the log is answered with its receipt")
