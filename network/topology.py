"""The bidtrace Fabric network on loopback: one peer, one Raft orderer and one chaincode server per organisation.

`FabricNetwork.up()` creates what is missing (crypto material, channel `evidence` through the channel
participation API, peers joined, chaincode `evidence` installed, approved and committed) and starts
every process; `down()` stops them; the data folder keeps the state between the two. `add_org()` adds
a city to the running channel by a configuration update signed by a majority of the admins.
"""

import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from network import fabric_config as fc
from network.build import Binaries, binaries
from network.layout import (
    CHAINCODE,
    CHANNEL,
    DEFAULT_ORGS,
    HOST,
    Org,
    check_msp_id,
    default_home,
    default_port_base,
    orgs_of,
)
from network.node import Node, wait_for_port

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAINCODE_VERSION = "1"


class NetworkError(Exception):
    """A step of bringing the network up or changing it failed; the message says which and why."""


@dataclass
class State:
    """What `up` has done so far, kept in `<home>/network.json`."""

    orgs: list[str]
    port_base: int
    orderers: list[str] = field(default_factory=list)  # organisations that run an orderer
    channel_created: bool = False
    joined: list[str] = field(default_factory=list)  # organisations whose peer joined the channel
    package_ids: dict[str, str] = field(default_factory=dict)
    approved: list[str] = field(default_factory=list)
    sequence: int = 0  # committed chaincode definition sequence

    @classmethod
    def load(cls, path: Path) -> "State | None":
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        tmp.replace(path)


class FabricNetwork:
    def __init__(
        self,
        home: Path | None = None,
        orgs: list[str] | None = None,
        port_base: int | None = None,
        bins: Binaries | None = None,
        log: Any = None,
        batch_timeout: str = "500ms",
    ) -> None:
        self.home = (home or default_home()).resolve()
        # How long an orderer waits to fill a block: the floor of every anchor's latency, and the price of
        # a shorter one is more, smaller blocks (more signatures and commits per transaction).
        self.batch_timeout = batch_timeout
        self.bins = bins or binaries()
        self.say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        existing = State.load(self.state_file)
        if existing is not None:
            if orgs and list(orgs) != existing.orgs[: len(orgs)]:
                raise NetworkError(
                    f"{self.home} holds a network of {', '.join(existing.orgs)}; "
                    f"use another BIDTRACE_FABRIC_HOME for {', '.join(orgs)}"
                )
            self.state = existing
        else:
            self.state = State(orgs=list(orgs or DEFAULT_ORGS), port_base=port_base or default_port_base())
            self.state.orderers = list(self.state.orgs)

    # --- layout --------------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.home / "network.json"

    @property
    def orgs(self) -> list[Org]:
        return orgs_of(self.state.orgs, self.home, self.state.port_base)

    @property
    def orderer_orgs(self) -> list[Org]:
        return [o for o in self.orgs if o.msp_id in self.state.orderers]

    def org(self, msp_id: str) -> Org:
        for o in self.orgs:
            if o.msp_id == msp_id:
                return o
        raise NetworkError(f"no organisation {msp_id} in this network ({', '.join(self.state.orgs)})")

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def genesis_block(self) -> Path:
        return self.home / "channel" / f"{CHANNEL}.block"

    def peer_node(self, o: Org) -> Node:
        return Node(f"peer-{o.short}", self.run_dir)

    def orderer_node(self, o: Org) -> Node:
        return Node(f"orderer-{o.short}", self.run_dir)

    def chaincode_node(self, o: Org) -> Node:
        return Node(f"chaincode-{o.short}", self.run_dir)

    def profile_file(self, o: Org) -> Path:
        return self.home / "profiles" / f"{o.short}.json"

    # --- commands ------------------------------------------------------------------------------------------
    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "ORDERER_", "FABRIC_"))}
        env["FABRIC_LOGGING_SPEC"] = os.environ.get("BIDTRACE_FABRIC_LOGGING", "info")
        env.update(extra or {})
        return env

    def _admin_env(self, o: Org) -> dict[str, str]:
        return self._env(
            {
                "FABRIC_CFG_PATH": str(o.peer_cfg),
                "CORE_PEER_LOCALMSPID": o.msp_id,
                "CORE_PEER_MSPCONFIGPATH": str(o.admin_msp),
                "CORE_PEER_ADDRESS": o.endpoint(o.peer_port),
                "CORE_PEER_TLS_ENABLED": "true",
                "CORE_PEER_TLS_ROOTCERT_FILE": str(o.peer_dir / "tls" / "ca.crt"),
            }
        )

    def _run(self, argv: list[str], env: dict[str, str], what: str, ok_if: str | None = None,
             timeout: float = 120) -> str:
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=self.home)
        except OSError as exc:
            raise NetworkError(f"{what}: cannot run {argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            output = (proc.stderr + proc.stdout).strip()
            if ok_if and ok_if in output:
                return output
            raise NetworkError(f"{what} failed ({Path(argv[0]).name} exit {proc.returncode}):\n{output[-3000:]}")
        return proc.stdout

    def _peer(self, o: Org, *args: str, what: str, ok_if: str | None = None, timeout: float = 120) -> str:
        return self._run([str(self.bins.path("peer")), *args], self._admin_env(o), what, ok_if, timeout)

    def _orderer_flags(self) -> list[str]:
        o = self._any_running_orderer()
        return ["-o", o.endpoint(o.orderer_port), "--tls", "--cafile", str(o.orderer_tls_ca_cert)]

    def _any_running_orderer(self) -> Org:
        for o in self.orderer_orgs:
            if self.orderer_node(o).running():
                return o
        raise NetworkError("no orderer of this network is running")

    # --- up ------------------------------------------------------------------------------------------------
    def up(self) -> None:
        if not self.bins.present():
            raise NetworkError(f"Fabric binaries missing in {self.bins.bin_dir}; run `bidtrace network build`")
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_material()
        for o in self.orderer_orgs:
            self._start_orderer(o)
        if not self.state.channel_created:
            self._create_channel()
        for o in self.orgs:
            self._start_peer(o)
        for o in self.orgs:
            if o.msp_id not in self.state.joined:
                self._join_peer(o)
        self._deploy_chaincode()
        for o in self.orgs:
            self._write_profile(o)
        self.wait_ready()
        self.say(f"network up in {time.monotonic() - started:.1f} s: {', '.join(self.state.orgs)} on {self.home}")

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait until every organisation's gateway evaluates the contract on every organisation's peer.

        Peers started before any has joined the channel refuse each other's first gossip handshakes, and a
        gateway finds other organisations' peers only through gossip; until then endorsement fails with
        "no combination of peers". Returns the seconds waited; TimeoutError names the pairs still failing.
        """
        from anchors.fabric.ledger import FabricLedger
        from anchors.ledger import LedgerError

        started = time.monotonic()
        targets = [o.msp_id for o in self.orgs]
        ledgers = [FabricLedger.from_profile(self.profile_file(o)) for o in self.orgs]
        pending = {(ledger.profile["msp_id"], target): "" for ledger in ledgers for target in targets}
        try:
            while pending:
                for ledger in ledgers:
                    for target in targets:
                        key = (ledger.profile["msp_id"], target)
                        if key not in pending:
                            continue
                        try:
                            ledger.contract.evaluate_transaction("list_anchors", "readiness-probe", "0", "1",
                                                                 target_organizations=[target])
                            del pending[key]
                        except LedgerError as exc:
                            pending[key] = str(exc)
                if not pending:
                    break
                if time.monotonic() - started > timeout:
                    failing = "; ".join(f"{g} -> {t}: {why[:200]}" for (g, t), why in sorted(pending.items()))
                    raise TimeoutError(f"network not usable after {timeout:.0f} s: {failing}")
                time.sleep(0.5)
        finally:
            for ledger in ledgers:
                ledger.close()
        waited = time.monotonic() - started
        self.say(f"every gateway evaluates on every peer ({len(targets)}x{len(targets)}) after {waited:.1f} s")
        return waited

    def _write_material(self) -> None:
        crypto_cfg = fc.write_yaml(self.home / "config" / "crypto-config.yaml", fc.crypto_config(self.orgs))
        crypto_dir = self.home / "crypto"
        missing = [o for o in self.orgs if not o.peer_dir.exists()]
        if missing:
            verb = "extend" if crypto_dir.exists() else "generate"
            out = "--input" if verb == "extend" else "--output"
            self.say(f"crypto material ({verb}) for {', '.join(o.msp_id for o in missing)}")
            self._run([str(self.bins.path("cryptogen")), verb, f"--config={crypto_cfg}", f"{out}={crypto_dir}"],
                      self._env(), "cryptogen")
        fc.write_yaml(self.home / "config" / "configtx.yaml", fc.configtx(self.orgs, self.orderer_orgs,
                                                                             self.batch_timeout))
        for o in self.orgs:
            fc.write_yaml(o.peer_cfg / "core.yaml", fc.core_yaml(o, self.orgs))
        for o in self.orderer_orgs:
            fc.write_yaml(o.orderer_cfg / "orderer.yaml", fc.orderer_yaml(o))

    def _start_orderer(self, o: Org) -> None:
        node = self.orderer_node(o)
        if not node.running():
            node.start([str(self.bins.path("orderer"))], self._env({"FABRIC_CFG_PATH": str(o.orderer_cfg)}))
        wait_for_port(HOST, o.orderer_admin_port, 30, node)

    def _start_peer(self, o: Org) -> None:
        node = self.peer_node(o)
        if not node.running():
            node.start([str(self.bins.path("peer")), "node", "start"],
                       self._env({"FABRIC_CFG_PATH": str(o.peer_cfg)}))
        wait_for_port(HOST, o.peer_port, 30, node)

    def _create_channel(self) -> None:
        self.genesis_block.parent.mkdir(parents=True, exist_ok=True)
        self._run(
            [str(self.bins.path("configtxgen")), "-profile", "EvidenceChannel", "-outputBlock",
             str(self.genesis_block), "-channelID", CHANNEL, "-configPath", str(self.home / "config")],
            self._env(), "configtxgen (channel genesis block)",
        )
        for o in self.orderer_orgs:
            self._osnadmin_join(o)
        self.state.channel_created = True
        self.state.save(self.state_file)

    def _osnadmin_join(self, o: Org, block: Path | None = None) -> None:
        tls = o.orderer_dir / "tls"
        self._run(
            [str(self.bins.path("osnadmin")), "channel", "join", "--channelID", CHANNEL, "--config-block",
             str(block or self.genesis_block), "-o", o.endpoint(o.orderer_admin_port), "--ca-file",
             str(tls / "ca.crt"), "--client-cert", str(tls / "server.crt"), "--client-key", str(tls / "server.key")],
            self._env(), f"osnadmin channel join on {o.orderer_name}", ok_if="already exists",
        )

    def _retrying(self, step: Callable[[], object], timeout: float = 90) -> None:
        """Run a step that fails while Raft elects a leader or a peer catches up, until it succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                step()
                return
            except NetworkError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def _join_peer(self, o: Org, block: Path | None = None) -> None:
        self._retrying(lambda: self._peer(o, "channel", "join", "-b", str(block or self.genesis_block),
                                          what=f"{o.peer_name} joining {CHANNEL}", ok_if="already exists"))
        self.state.joined.append(o.msp_id)
        self.state.save(self.state_file)

    # --- chaincode -----------------------------------------------------------------------------------------
    def _package(self, o: Org) -> tuple[Path, str]:
        """A ccaas package naming this organisation's chaincode server; returns it and its package id."""
        label = f"{CHAINCODE}_{CHAINCODE_VERSION}"
        code = _tar_gz({"connection.json": json.dumps(fc.connection_json(o)).encode()})
        metadata = json.dumps({"type": "ccaas", "label": label}).encode()
        package = _tar_gz({"metadata.json": metadata, "code.tar.gz": code})
        path = self.home / "chaincode" / f"{CHAINCODE}-{o.short}.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package)
        return path, f"{label}:{hashlib.sha256(package).hexdigest()}"

    def _install(self, o: Org) -> None:
        if o.msp_id in self.state.package_ids:
            return
        path, package_id = self._package(o)
        self._peer(o, "lifecycle", "chaincode", "install", str(path), what=f"install on {o.peer_name}",
                   ok_if="already successfully installed", timeout=300)
        self.state.package_ids[o.msp_id] = package_id
        self.state.save(self.state_file)

    def _start_chaincode(self, o: Org) -> None:
        node = self.chaincode_node(o)
        if not node.running():
            env = self._env(
                {
                    "CHAINCODE_ID": self.state.package_ids[o.msp_id],
                    "CHAINCODE_SERVER_ADDRESS": o.endpoint(o.chaincode_port),
                    "PYTHONPATH": str(REPO_ROOT),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            node.start([sys.executable, "-m", "chaincode.server"], env, cwd=REPO_ROOT)
        wait_for_port(HOST, o.chaincode_port, 30, node)

    def _approve(self, o: Org, sequence: int) -> None:
        self._retrying(lambda: self._peer(
            o, "lifecycle", "chaincode", "approveformyorg", *self._orderer_flags(), "--channelID", CHANNEL,
            "--name", CHAINCODE, "--version", CHAINCODE_VERSION, "--package-id", self.state.package_ids[o.msp_id],
            "--sequence", str(sequence), what=f"approve for {o.msp_id}", ok_if="unchanged content",
        ))
        self.state.approved.append(o.msp_id)
        self.state.save(self.state_file)

    def _commit(self, sequence: int) -> None:
        targets: list[str] = []
        for o in self.orgs:
            targets += ["--peerAddresses", o.endpoint(o.peer_port), "--tlsRootCertFiles",
                        str(o.peer_dir / "tls" / "ca.crt")]
        self._retrying(lambda: self._peer(
            self.orgs[0], "lifecycle", "chaincode", "commit", *self._orderer_flags(), "--channelID", CHANNEL,
            "--name", CHAINCODE, "--version", CHAINCODE_VERSION, "--sequence", str(sequence), *targets,
            what="commit of the chaincode definition", ok_if=f"new definition must be sequence {sequence + 1}",
        ))
        self.state.sequence = sequence
        self.state.save(self.state_file)

    def _deploy_chaincode(self) -> None:
        for o in self.orgs:
            self._install(o)
            self._start_chaincode(o)
        sequence = self.state.sequence or 1
        for o in self.orgs:
            if o.msp_id not in self.state.approved:
                self._approve(o, sequence)
        if not self.state.sequence:
            self._commit(1)

    def _write_profile(self, o: Org) -> None:
        profile = {
            "channel": CHANNEL,
            "chaincode": CHAINCODE,
            "msp_id": o.msp_id,
            "peer": {"endpoint": o.endpoint(o.peer_port), "tls_root_cert": str(o.peer_dir / "tls" / "ca.crt")},
            "identity": {"msp_dir": str(o.user_msp)},
            "organizations": {
                x.msp_id: {"root_cert": str(x.ca_cert), "tls_root_cert": str(x.tls_ca_cert),
                           "peer_endpoint": x.endpoint(x.peer_port)}
                for x in self.orgs
            },
            "orderers": {x.orderer_msp_id: {"root_cert": str(x.orderer_ca_cert)} for x in self.orderer_orgs},
        }
        fc.write_yaml(self.profile_file(o), profile)

    # --- down / status -------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every node, each kind in parallel: chaincode servers, then peers, then orderers."""
        stopped: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, len(self.orgs))) as pool:
            for make in (self.chaincode_node, self.peer_node, self.orderer_node):
                nodes = [make(o) for o in self.orgs]
                stopped += [n.name for n, did in zip(nodes, pool.map(Node.stop, nodes), strict=True) if did]
        return stopped

    def stop_node(self, name: str) -> bool:
        return Node(name, self.run_dir).stop()

    def start_node(self, name: str) -> None:
        kind, _, short = name.partition("-")
        org = next((o for o in self.orgs if o.short == short), None)
        if org is None or kind not in ("peer", "orderer", "chaincode"):
            raise NetworkError(f"no node {name!r}")
        {"peer": self._start_peer, "orderer": self._start_orderer, "chaincode": self._start_chaincode}[kind](org)

    def status(self) -> dict[str, Any]:
        """Each node's process, health and height; a height that could not be read carries its `error`."""
        nodes: list[dict[str, Any]] = []
        for o in self.orgs:
            peer = self.peer_node(o)
            nodes.append(self._node_status(peer, o.endpoint(o.peer_port), o.peer_operations_port,
                                           functools.partial(self._height, o)))
            if o.msp_id in self.state.orderers:
                orderer = self.orderer_node(o)
                nodes.append(self._node_status(orderer, o.endpoint(o.orderer_port), o.orderer_operations_port,
                                               functools.partial(self._orderer_height, o)))
            cc = self.chaincode_node(o)
            nodes.append({"node": cc.name, "endpoint": o.endpoint(o.chaincode_port), "running": cc.running(),
                          "health": None, "height": None})
        return {"home": str(self.home), "channel": CHANNEL, "organizations": self.state.orgs,
                "chaincode": self._chaincode_state(), "nodes": nodes}

    @staticmethod
    def _node_status(node: Node, endpoint: str, operations_port: int, height: Callable[[], Any]) -> dict[str, Any]:
        report: dict[str, Any] = {"node": node.name, "endpoint": endpoint, "running": node.running(),
                                  "health": _health(operations_port), "height": None}
        if report["running"]:
            try:
                report.update(height())
            except (NetworkError, subprocess.TimeoutExpired) as exc:
                report["error"] = str(exc).splitlines()[0][:300]
        return report

    def _height(self, o: Org) -> dict[str, Any]:
        out = self._peer(o, "channel", "getinfo", "-c", CHANNEL, what=f"peer channel getinfo on {o.peer_name}",
                         timeout=15)
        return {"height": int(_json_in(out, f"peer channel getinfo on {o.peer_name}")["height"])}

    def _orderer_height(self, o: Org) -> dict[str, Any]:
        """Height and consensus relation from the channel participation API (there is no `channel info`)."""
        tls = o.orderer_dir / "tls"
        what = f"osnadmin channel list --channelID {CHANNEL} on {o.orderer_name}"
        out = self._run(
            [str(self.bins.path("osnadmin")), "channel", "list", "--channelID", CHANNEL, "-o",
             o.endpoint(o.orderer_admin_port), "--ca-file", str(tls / "ca.crt"), "--client-cert",
             str(tls / "server.crt"), "--client-key", str(tls / "server.key")],
            self._env(), what, timeout=15,
        )
        info = _json_in(out, what)
        return {"height": int(info["height"]), "relation": info.get("consensusRelation"),
                "orderer_status": info.get("status")}

    def _chaincode_state(self) -> dict[str, Any]:
        for o in self.orgs:
            if not self.peer_node(o).running():
                continue
            try:
                out = self._peer(o, "lifecycle", "chaincode", "querycommitted", "-C", CHANNEL, "-n", CHAINCODE,
                                 "-O", "json", what="querycommitted", timeout=15)
                value: dict[str, Any] = json.loads(out[out.find("{"): out.rfind("}") + 1])
                return value
            except (NetworkError, subprocess.TimeoutExpired, ValueError) as exc:
                return {"committed": None, "sequence": self.state.sequence,
                        "error": f"querycommitted on {o.peer_name}: {str(exc).splitlines()[0][:300]}"}
        return {"committed": None, "reason": "no peer running"}

    # --- add an organisation -------------------------------------------------------------------------------
    def add_org(self, msp_id: str) -> Org:
        """Add a city organisation (peer and chaincode server, no orderer) to the running channel."""
        check_msp_id(msp_id)
        if msp_id in self.state.orgs:
            raise NetworkError(f"{msp_id} is already in the network")
        admins = [o for o in self.orgs if self.peer_node(o).running()]
        needed = len(self.orgs) // 2 + 1
        if len(admins) < needed:
            raise NetworkError(f"adding {msp_id} needs {needed} organisations' peers running, {len(admins)} are")
        self.state.orgs.append(msp_id)
        self.state.save(self.state_file)
        new = self.org(msp_id)
        self._write_material()
        self._config_update_add(new, admins[:needed])
        self._start_peer(new)
        self._join_peer(new)
        self._install(new)
        self._start_chaincode(new)
        self._approve(new, self.state.sequence)
        for o in self.orgs:
            self._write_profile(o)
        self.wait_ready()
        return new

    def channel_config(self) -> dict[str, Any]:
        """The channel's current configuration, decoded to JSON by configtxlator."""
        o = next((x for x in self.orgs if self.peer_node(x).running()), None)
        if o is None:
            raise NetworkError("no peer of this network is running")
        work = Path(tempfile.mkdtemp(prefix="config-", dir=self.home))
        try:
            block = work / "config_block.pb"
            self._peer(o, "channel", "fetch", "config", str(block), "-c", CHANNEL, *self._orderer_flags(),
                       what="fetch the channel configuration")
            decoded = json.loads(self._run([str(self.bins.path("configtxlator")), "proto_decode", "--input",
                                            str(block), "--type", "common.Block"], self._env(), "decode config block"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        config: dict[str, Any] = decoded["data"]["data"][0]["payload"]["data"]["config"]
        return config

    def _config_update_add(self, new: Org, signers: list[Org]) -> None:
        work = Path(tempfile.mkdtemp(prefix="add-org-", dir=self.home))
        try:
            lator = str(self.bins.path("configtxlator"))
            org_json = self._run(
                [str(self.bins.path("configtxgen")), "-printOrg", new.msp_id, "-configPath",
                 str(self.home / "config")], self._env(), "configtxgen -printOrg",
            )
            org_group = json.loads(org_json[org_json.find("{"):])
            # -printOrg leaves the anchor peers out; without them added cities never discover each other
            # through gossip once their peers restart, and gateways cannot gather their endorsements.
            org_group.setdefault("values", {})["AnchorPeers"] = {
                "mod_policy": "Admins", "version": "0",
                "value": {"anchor_peers": [{"host": HOST, "port": new.peer_port}]},
            }
            block = work / "config_block.pb"
            self._peer(signers[0], "channel", "fetch", "config", str(block), "-c", CHANNEL,
                       *self._orderer_flags(), what="fetch the channel configuration")
            decoded = json.loads(self._run([lator, "proto_decode", "--input", str(block), "--type", "common.Block"],
                                           self._env(), "decode config block"))
            config = decoded["data"]["data"][0]["payload"]["data"]["config"]
            updated = json.loads(json.dumps(config))
            updated["channel_group"]["groups"]["Application"]["groups"][new.msp_id] = org_group
            for name, value in (("original", config), ("modified", updated)):
                (work / f"{name}.json").write_text(json.dumps(value))
                self._run([lator, "proto_encode", "--input", str(work / f"{name}.json"), "--type",
                           "common.Config", "--output", str(work / f"{name}.pb")], self._env(), f"encode {name}")
            self._run([lator, "compute_update", "--channel_id", CHANNEL, "--original", str(work / "original.pb"),
                       "--updated", str(work / "modified.pb"), "--output", str(work / "update.pb")],
                      self._env(), "compute the configuration update")
            update = json.loads(self._run([lator, "proto_decode", "--input", str(work / "update.pb"), "--type",
                                           "common.ConfigUpdate"], self._env(), "decode update"))
            envelope = {"payload": {"header": {"channel_header": {"channel_id": CHANNEL, "type": 2}},
                                    "data": {"config_update": update}}}
            (work / "envelope.json").write_text(json.dumps(envelope))
            env_pb = work / "envelope.pb"
            self._run([lator, "proto_encode", "--input", str(work / "envelope.json"), "--type", "common.Envelope",
                       "--output", str(env_pb)], self._env(), "encode update envelope")
            for o in signers[:-1]:
                self._peer(o, "channel", "signconfigtx", "-f", str(env_pb), what=f"{o.msp_id} admin signs")
            self._peer(signers[-1], "channel", "update", "-f", str(env_pb), "-c", CHANNEL, *self._orderer_flags(),
                       what=f"channel update adding {new.msp_id}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.say(f"{new.msp_id} added to {CHANNEL} (signed by {', '.join(o.msp_id for o in signers)})")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _json_in(output: str, what: str) -> dict[str, Any]:
    """The JSON object in a command's output (Fabric's commands print a status line before it)."""
    start, end = output.find("{"), output.rfind("}")
    try:
        value = json.loads(output[start: end + 1]) if 0 <= start < end else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or "height" not in value:
        raise NetworkError(f"{what} gave no height: {output.strip()[:300]!r}")
    return value


def _health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as resp:
            return str(json.loads(resp.read()).get("status", "?"))
    except (OSError, ValueError):
        return None


__all__ = ["FabricNetwork", "NetworkError", "State"]
