"""Any byte of any member of a genuine extract, changed to any other value: never VERIFIED.

The archive is laid out again around the changed member, as a forger would, so the check that catches the
change is the one that binds the member's content, not the zip's own checksums.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.forgery_kit import Genuine, files_of, genuine_project, messages, rezip, verify
from verifier.extract import Verdict


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Genuine:
    return genuine_project(tmp_path_factory.mktemp("genuine"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.integers(min_value=0), position=st.floats(0, 1, exclude_max=True),
       delta=st.integers(min_value=1, max_value=255), trusted=st.booleans())
def test_a_changed_byte_in_any_member_is_never_verified(genuine: Genuine, workdir: Path, member: int,
                                                       position: float, delta: int, trusted: bool) -> None:
    files = files_of(genuine.data)
    names = sorted(files)
    name = names[member % len(names)]
    data = files[name]
    offset = int(position * len(data))
    files[name] = data[:offset] + bytes([(data[offset] + delta) % 256]) + data[offset + 1:]
    report = verify(workdir, rezip(files), genuine.roots if trusted else None)
    assert report.verdict is Verdict.FAILED, (name, offset)
    assert messages(report)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.integers(min_value=0), position=st.floats(0, 1), insert=st.binary(min_size=1, max_size=8))
def test_bytes_inserted_into_any_member_are_never_verified(genuine: Genuine, workdir: Path, member: int,
                                                          position: float, insert: bytes) -> None:
    files = files_of(genuine.data)
    names = sorted(files)
    name = names[member % len(names)]
    data = files[name]
    offset = int(position * len(data))
    files[name] = data[:offset] + insert + data[offset:]
    report = verify(workdir, rezip(files), genuine.roots)
    assert report.verdict is Verdict.FAILED, (name, offset, insert)
