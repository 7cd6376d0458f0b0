"""The sequencer of a notary's workers: its messages, its appends for several workers, and what a worker
answers when the sequencer is gone."""

import dataclasses
import io
import socket
import threading

import pytest

from notary.client import complete_receipts
from notary.log import Disclosure, RecordRejected, Submission, _Pending
from notary.sequencer import (
    Sequencer,
    SequencerClient,
    WireError,
    _Body,
    encode_pending,
    parse_pending,
    read_frame,
)
from notary.service import Notary
from tests.conftest import Participants, entry_of, segment
from verifier.entry import parse_entry


def _checked(notary: Notary, people: Participants, first: int, count: int = 3) -> _Pending:
    batch = [segment(first + i, project=f"P-{i % 2}") for i in range(count)]
    return notary.log._check(Submission("V-1.cam1", batch, people.camera.sign_batch(batch)))


def test_a_checked_submission_crosses_the_wire_unchanged(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    pending = dataclasses.replace(_checked(sqlite_notary, people, 0),
                                  openings={1: [Disclosure(1, "expert_commitment", "00ff", "张三")]})
    body = read_frame(io.BytesIO(encode_pending(41, pending)))
    assert body is not None and body.request == 41
    assert parse_pending(body) == pending


def test_a_malformed_message_is_refused_by_name() -> None:
    with pytest.raises(WireError, match="shorter than its head"):
        _Body(b"\x01")
    with pytest.raises(WireError, match="cut short"):
        _Body(b"\x01" + bytes(8) + b"\x00\x00\x00\x09abc").text()
    body = _Body(b"\x02" + bytes(8) + b"extra")
    with pytest.raises(WireError, match="5 bytes left over"):
        body.done()
    with pytest.raises(WireError, match="ends 3 bytes before the end of a frame"):
        read_frame(io.BytesIO(b"\x00\x00\x00\x0c" + bytes(9)))


def test_one_sequencer_appends_for_two_workers(sqlite_notary: Notary) -> None:
    notary = sqlite_notary
    people = Participants(notary)
    workers = [SequencerClient(Sequencer(notary.log).connect()) for _ in range(2)]
    try:
        submissions = [_checked(notary, people, 10 * n) for n in range(4)]
        futures = [workers[n % 2].commit(p) for n, p in enumerate(submissions)]
        appended = [f.result(timeout=30) for f in futures]
        leaves = sorted(seq for a in appended for seq, _, _ in a.members)
        assert leaves == list(range(leaves[0], leaves[0] + 12)), "leaves must be unique and without gaps"
        for pending, answer in zip(submissions, appended, strict=True):
            for rh, seq in zip(pending.record_hashes, [s for s, _, _ in answer.members], strict=True):
                assert answer.seq_of[rh] == seq
                assert parse_entry(entry_of(notary, seq)).record_hash == rh
            for receipt in complete_receipts(notary.log._answer(pending, answer).encode()):
                receipt.verify(notary.key.note_key, "province")
        again = workers[1].commit(submissions[0]).result(timeout=30)  # a resend, through the other worker
        assert again.appended == 0 and again.seq_of == appended[0].seq_of
        assert workers[0].counts() == notary.log.commit_counts()
        assert notary.log.commit_counts().submissions >= 5
    finally:
        for worker in workers:
            worker.close()


def test_a_refusal_reaches_the_worker(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    pending = _checked(sqlite_notary, people, 0)
    sqlite_notary.log.revoke_submitter("V-1.cam1")  # after the check, before the append
    worker = SequencerClient(Sequencer(sqlite_notary.log).connect())
    try:
        with pytest.raises(RecordRejected, match=r"V-1\.cam1.*was revoked") as refused:
            worker.commit(pending).result(timeout=30)
        assert refused.value.status == 403
    finally:
        worker.close()


def test_a_worker_answers_503_when_its_sequencer_is_gone(sqlite_notary: Notary) -> None:
    people = Participants(sqlite_notary)
    pending = _checked(sqlite_notary, people, 0)
    ours, theirs = socket.socketpair()
    gone = threading.Event()
    worker = SequencerClient(ours, on_gone=gone.set)
    try:
        waiting = worker.commit(pending)
        with theirs.makefile("rb") as stream:  # the sequencer reads the submission, then dies
            assert read_frame(stream) is not None
        theirs.close()
        refusal = waiting.exception(timeout=30)
        assert isinstance(refusal, RecordRejected) and refusal.status == 503
        assert "sequencer is unavailable" in str(refusal) and "resubmitting is safe" in str(refusal)
        assert gone.wait(30)
        later = worker.commit(pending).exception(timeout=0)  # refused at once, not left waiting
        assert isinstance(later, RecordRejected) and later.status == 503
    finally:
        worker.close()


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x00\x03abc",  # too short for a head
    b"\x00\x00\x00\x0e\x01" + bytes(8) + b"\x00\x00\x00\x01\xff",  # a submission whose first text is not UTF-8
])
def test_the_sequencer_drops_a_connection_that_speaks_no_message_of_its_format(sqlite_notary: Notary,
                                                                                frame: bytes) -> None:
    end = Sequencer(sqlite_notary.log).connect()
    try:
        end.sendall(frame)
        with end.makefile("rb") as stream:
            assert stream.read() == b"", "the sequencer answered a message it cannot have parsed"
    finally:
        end.close()
