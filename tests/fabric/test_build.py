"""Where Fabric's binaries come from: a given folder, the cache, or an offline build from the source archive."""

import os
import stat
from pathlib import Path

import pytest
from conftest import fabric_required

from network import build
from network.build import COMMANDS, FABRIC_VERSION, Binaries, BuildError, resolve


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache and no source archive, unless a test provides them."""
    if "GOCACHE" not in os.environ:  # Go's compile cache (not Fabric's binaries) stays where it was
        monkeypatch.setenv("GOCACHE", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") /
                                          "go-build"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BIDTRACE_FABRIC_BIN", raising=False)
    monkeypatch.delenv("BIDTRACE_FABRIC_SOURCE", raising=False)
    monkeypatch.setattr(build, "shared_source", lambda: tmp_path / "no-shared" / build.SOURCE_ARCHIVE)


def _linked(real: Binaries, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for command in COMMANDS:
        (folder / command).symlink_to(real.path(command))
    return folder


def _scripts(folder: Path, version: str) -> Path:
    """Executables named like Fabric's commands whose `peer version` reports `version`."""
    folder.mkdir(parents=True)
    for command in COMMANDS:
        script = folder / command
        script.write_text(f"#!/bin/sh\necho '{command}:'\necho ' Version: {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_a_given_folder_is_used_as_given(tmp_path: Path, fabric_binaries: Binaries) -> None:
    folder = _linked(fabric_binaries, tmp_path / "given")
    before = sorted(os.listdir(folder))
    said: list[str] = []
    found = resolve(bin_dir=folder, say=said.append)
    assert (found.bin_dir, found.origin) == (folder.resolve(), "given")
    assert sorted(os.listdir(folder)) == before  # never written into
    assert said == [f"using Fabric {FABRIC_VERSION} binaries in {folder.resolve()} (given folder)"]


def test_the_environment_names_the_given_folder(
    tmp_path: Path, fabric_binaries: Binaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIDTRACE_FABRIC_BIN", str(_linked(fabric_binaries, tmp_path / "env")))
    assert resolve(say=lambda _: None).origin == "given"


def test_a_given_folder_of_another_release_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"peer reports Fabric 2\.4\.9, bidtrace runs 2\.5\.16"):
        resolve(bin_dir=_scripts(tmp_path / "old", "2.4.9"), say=lambda _: None)


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=f"folder {tmp_path / 'nowhere'} does not exist"):
        resolve(bin_dir=tmp_path / "nowhere", say=lambda _: None)


def test_an_incomplete_folder_names_what_is_missing(tmp_path: Path) -> None:
    folder = _scripts(tmp_path / "partial", FABRIC_VERSION)
    (folder / "osnadmin").unlink()
    with pytest.raises(BuildError, match="lacks osnadmin"):
        resolve(bin_dir=folder, say=lambda _: None)


def test_the_cache_comes_before_a_source_archive(tmp_path: Path, fabric_binaries: Binaries) -> None:
    _linked(fabric_binaries, build.cache_bin_dir())
    bogus = tmp_path / build.SOURCE_ARCHIVE
    bogus.write_bytes(b"not fabric")
    assert resolve(source=bogus, say=lambda _: None).origin == "cache"


def test_a_source_archive_with_another_digest_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / build.SOURCE_ARCHIVE
    bogus.write_bytes(b"not the fabric source")
    with pytest.raises(BuildError, match=f"has sha256 .*, the Fabric {FABRIC_VERSION} source archive has"):
        resolve(source=bogus, say=lambda _: None)
    assert not build.cache_bin_dir().exists()


def test_a_folder_that_is_not_fabric_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "go.mod").write_text("module example.com/other\n")
    with pytest.raises(BuildError, match="is not Fabric's source"):
        resolve(source=tmp_path / "src", say=lambda _: None)


def test_nothing_found_names_every_way_to_get_binaries() -> None:
    with pytest.raises(BuildError) as refused:
        resolve(say=lambda _: None)
    message = str(refused.value)
    for way in ("--bin DIR", "BIDTRACE_FABRIC_BIN", "--source FILE|DIR", build.SOURCE_ARCHIVE,
                f"official v{FABRIC_VERSION} release archive"):
        assert way in message


@pytest.mark.fabric
@pytest.mark.skipif(
    not (fabric_required() or os.environ.get("BIDTRACE_TEST_FABRIC_BUILD") == "1"),
    reason="builds Fabric from source (about a minute): runs in CI or with BIDTRACE_TEST_FABRIC_BUILD=1",
)
def test_builds_from_the_shared_source_archive_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Path(__file__).resolve().parents[2].parent / "shared" / "third_party" / "fabric" / build.SOURCE_ARCHIVE
    if not archive.is_file():
        pytest.fail(f"the Fabric source archive is not at {archive}")
    monkeypatch.setattr(build, "shared_source", lambda: archive)
    said: list[str] = []
    found = resolve(say=said.append)
    assert (found.bin_dir, found.origin) == (build.cache_bin_dir(), "built")
    assert build.peer_version(found) == FABRIC_VERSION
    assert (found.bin_dir / "BUILD-INFO").is_file()
    assert any(f"built from {archive}" in line for line in said)
    assert resolve(say=lambda _: None).origin == "cache"  # a second call builds nothing
