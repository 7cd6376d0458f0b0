"""The parts of network/ that need no Fabric binaries: layout, generated files, ccaas builder, pid files."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from network import fabric_config as fc
from network.layout import orgs_of
from network.node import Node, wait_for_port
from network.topology import FabricNetwork

ORGS = ["ProvinceMSP", "JinanMSP", "QingdaoMSP", "YantaiMSP", "WeifangMSP"]


def test_every_node_gets_its_own_loopback_port(tmp_path: Path) -> None:
    orgs = orgs_of(ORGS, tmp_path, 17000)
    ports = [o.port(k) for o in orgs for k in range(7)]
    assert len(set(ports)) == len(ports)


def test_org_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must look like"):
        orgs_of(["province"], tmp_path, 17000)
    with pytest.raises(ValueError, match="distinct"):
        orgs_of(["JinanMSP", "JinanMSP"], tmp_path, 17000)


def test_generated_configuration_names_every_organisation(tmp_path: Path) -> None:
    orgs = orgs_of(ORGS[:3], tmp_path, 17000)
    profile = fc.configtx(orgs, orgs)["Profiles"]["EvidenceChannel"]
    assert [o["ID"] for o in profile["Application"]["Organizations"]] == ORGS[:3]
    assert len(profile["Orderer"]["EtcdRaft"]["Consenters"]) == 3
    assert profile["Application"]["Policies"]["Endorsement"]["Rule"] == "MAJORITY Endorsement"
    assert all(o["AnchorPeers"] for o in profile["Application"]["Organizations"])
    core = fc.core_yaml(orgs[1], orgs)
    assert core["peer"]["listenAddress"] == "127.0.0.1:17010"
    assert core["chaincode"]["externalBuilders"][0]["path"] == str(fc.BUILDER_DIR)
    written = fc.write_yaml(tmp_path / "core.yaml", core)
    assert json.loads(written.read_text()) == core  # JSON is YAML: no YAML library needed


def test_ccaas_builder_scripts(tmp_path: Path) -> None:
    bin_dir = fc.BUILDER_DIR / "bin"
    src, meta, out, rel = (tmp_path / d for d in ("src", "meta", "out", "rel"))
    for d in (src, meta, out, rel):
        d.mkdir()
    (meta / "metadata.json").write_text(json.dumps({"type": "golang", "label": "x"}))
    assert subprocess.run([bin_dir / "detect", src, meta]).returncode != 0
    (meta / "metadata.json").write_text(json.dumps({"type": "ccaas", "label": "evidence_1"}))
    assert subprocess.run([bin_dir / "detect", src, meta]).returncode == 0
    (src / "connection.json").write_text('{"address": "127.0.0.1:17006"}')
    subprocess.run([bin_dir / "build", src, meta, out], check=True)
    subprocess.run([bin_dir / "release", out, rel], check=True)
    assert json.loads((rel / "chaincode" / "server" / "connection.json").read_text())["address"] == "127.0.0.1:17006"


def test_chaincode_package_names_the_organisations_server(tmp_path: Path) -> None:
    net = FabricNetwork(tmp_path, ORGS[:3], 17000)
    path, package_id = net._package(net.org("JinanMSP"))
    data = path.read_bytes()
    assert package_id == f"evidence_1:{hashlib.sha256(data).hexdigest()}"
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        assert json.load(outer.extractfile("metadata.json"))["type"] == "ccaas"  # type: ignore[arg-type]
        code = outer.extractfile("code.tar.gz").read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(code)) as inner:
        assert json.load(inner.extractfile("connection.json"))["address"] == "127.0.0.1:17016"  # type: ignore[arg-type]


def test_down_stops_only_what_up_started(tmp_path: Path) -> None:
    mine = Node("chaincode-test", tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine.start([sys.executable, "-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); "
                    "s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)"], env={})
        assert mine.running()
        assert mine.stop() and not mine.running()
        assert not mine.stop()  # nothing left to stop
        assert other.poll() is None  # a process we did not start is untouched
    finally:
        other.kill()
        other.wait()


def test_wait_for_port_reports_a_dead_node(tmp_path: Path) -> None:
    node = Node("orderer-test", tmp_path)
    node.start([sys.executable, "-c", "print('cannot start: bad config')"], env={})
    with pytest.raises(RuntimeError, match="bad config"):
        wait_for_port("127.0.0.1", 1, 10, node)


def test_fabric_ledger_names_the_missing_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anchors.fabric import open_fabric_ledger

    monkeypatch.setenv("BIDTRACE_FABRIC_HOME", str(tmp_path))
    monkeypatch.delenv("BIDTRACE_FABRIC_PROFILE", raising=False)
    with pytest.raises(FileNotFoundError, match=r"profiles/jinan.json; run `bidtrace network up`"):
        open_fabric_ledger("JinanMSP")


def test_a_node_stays_ours_through_exec(tmp_path: Path) -> None:
    """Right after start the child may still be in execve (empty command line), and a shell may exec its
    command: neither makes a live node look dead."""
    node = Node("peer-test", tmp_path)
    node.start(["/bin/sh", "-c", "exec sleep 30"], env={})
    try:
        assert node.running()
        time.sleep(0.3)  # the shell has exec'd sleep by now
        assert node.running()
    finally:
        assert node.stop()
    assert not node.running()


def test_a_reused_pid_is_not_taken_for_our_node(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        node = Node("orderer-test", tmp_path)
        tmp_path.mkdir(exist_ok=True)
        node.pid_file.write_text(json.dumps({"pid": stranger.pid, "started": 1, "argv": ["sleep", "30"]}))
        assert not node.running()
        assert not node.stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_down_stops_the_nodes_in_parallel(tmp_path: Path) -> None:
    net = FabricNetwork(tmp_path, ORGS[:3], 17000)
    slow_exit = ("import signal, sys, time\n"
                 "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.5), sys.exit(0)))\n"
                 "time.sleep(60)\n")
    for o in net.orgs:
        net.chaincode_node(o).start([sys.executable, "-c", slow_exit], env={})
    time.sleep(0.5)  # let them install their handlers
    started = time.monotonic()
    stopped = net.down()
    elapsed = time.monotonic() - started
    assert sorted(stopped) == sorted(net.chaincode_node(o).name for o in net.orgs)
    assert elapsed < 3.5, f"down took {elapsed:.1f} s for three nodes that each take 1.5 s to stop"


def test_status_reports_what_it_could_not_read(tmp_path: Path) -> None:
    """A node whose process runs but does not answer shows the failing command, not a silent blank."""
    net = FabricNetwork(tmp_path, ORGS[:3], 17900)
    orderer = net.orderer_node(net.orgs[0])
    orderer.start([sys.executable, "-c", "import time; time.sleep(30)"], env={})
    try:
        report = {n["node"]: n for n in net.status()["nodes"]}
        shown = report[orderer.name]
        assert shown["running"] and shown["height"] is None
        assert "osnadmin channel list --channelID evidence" in shown["error"], shown
        assert not report["peer-province"]["running"] and "error" not in report["peer-province"]
    finally:
        orderer.stop()
