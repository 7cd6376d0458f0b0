"""Secrets are kept: key and database files are created 0600 in 0700 folders, complete before they appear;
an empty, short or world-readable key file is refused, never used; no secret reaches a log."""

import os
import stat
from pathlib import Path

import pytest

from notary.access import AccessConfigError, PrincipalKey
from notary.keys import write_private
from notary.service import Notary
from tests.conftest import make_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_and_databases_are_created_owner_only(tmp_path: Path) -> None:
    notary = Notary(make_config(tmp_path / "notary"))
    try:
        data = notary.config.data_dir
        assert mode(data) == 0o700
        for name in ("notary.key", "records.key", "notary.db"):
            assert mode(data / name) == 0o600, name
        assert not [p for p in data.iterdir() if p.name.endswith(".tmp")]
    finally:
        notary.close()


def test_an_existing_key_is_never_replaced_by_a_racing_creator(tmp_path: Path) -> None:
    first = PrincipalKey.load_or_create(tmp_path / "keys" / "k.key", "dev-1")
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "keys" / "k.key", b"x" * 100, replace=False)
    again = PrincipalKey.load_or_create(tmp_path / "keys" / "k.key", "dev-1")
    assert again.public_pem() == first.public_pem()
    assert mode(tmp_path / "keys") == 0o700 and mode(tmp_path / "keys" / "k.key") == 0o600


@pytest.mark.parametrize(("content", "file_mode", "reason"), [
    (b"", 0o600, "empty or too short"), (b"\n  \n", 0o600, "empty or too short"),
    (b"-----BEGIN", 0o600, "empty or too short"), (None, 0o644, "readable or writable by others"),
])
def test_empty_short_or_exposed_key_files_are_refused(tmp_path: Path, content: bytes | None, file_mode: int,
                                                      reason: str) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(content if content is not None else PrincipalKey.generate("x").private_pem())
    os.chmod(path, file_mode)
    with pytest.raises(AccessConfigError, match=reason):
        PrincipalKey.load(path, "x")
    with pytest.raises(AccessConfigError, match=reason):
        PrincipalKey.load_or_create(path, "x")
