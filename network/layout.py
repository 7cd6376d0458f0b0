"""Names, folders and loopback ports of every node of the network, derived from the organisation list.

Organisation `i` (0-based, in the order given) gets ports `base + 10*i + k`: k=0 peer, 1 peer chaincode
listener, 2 peer operations, 3 orderer, 4 orderer admin, 5 orderer operations, 6 chaincode server.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ORGS = ("ProvinceMSP", "JinanMSP", "QingdaoMSP")
DEFAULT_PORT_BASE = 17000
CHANNEL = "evidence"
CHAINCODE = "evidence"
DOMAIN = "bidtrace.local"
HOST = "127.0.0.1"


def default_home() -> Path:
    return Path(os.environ.get("BIDTRACE_FABRIC_HOME", "data/fabric")).resolve()


def default_port_base() -> int:
    return int(os.environ.get("BIDTRACE_FABRIC_PORT_BASE", DEFAULT_PORT_BASE))


def check_msp_id(msp_id: str) -> str:
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]{0,30}MSP", msp_id):
        raise ValueError(
            f"organisation MSP id must look like 'JinanMSP' (letters and digits, ending in MSP), got {msp_id!r}"
        )
    return msp_id


@dataclass(frozen=True)
class Org:
    """One organisation: its peer, its orderer, its chaincode server."""

    msp_id: str
    index: int
    home: Path
    port_base: int

    @property
    def short(self) -> str:
        return self.msp_id.removesuffix("MSP").lower()

    @property
    def orderer_msp_id(self) -> str:
        return self.msp_id.removesuffix("MSP") + "OrdererMSP"

    @property
    def domain(self) -> str:
        return f"{self.short}.{DOMAIN}"

    @property
    def orderer_domain(self) -> str:
        return f"orderer.{self.short}.{DOMAIN}"

    @property
    def peer_name(self) -> str:
        return f"peer0.{self.domain}"

    @property
    def orderer_name(self) -> str:
        return f"orderer0.{self.orderer_domain}"

    def port(self, k: int) -> int:
        return self.port_base + 10 * self.index + k

    @property
    def peer_port(self) -> int:
        return self.port(0)

    @property
    def peer_chaincode_port(self) -> int:
        return self.port(1)

    @property
    def peer_operations_port(self) -> int:
        return self.port(2)

    @property
    def orderer_port(self) -> int:
        return self.port(3)

    @property
    def orderer_admin_port(self) -> int:
        return self.port(4)

    @property
    def orderer_operations_port(self) -> int:
        return self.port(5)

    @property
    def chaincode_port(self) -> int:
        return self.port(6)

    def endpoint(self, port: int) -> str:
        return f"{HOST}:{port}"

    # --- crypto material (cryptogen's layout) ------------------------------------------------------------
    @property
    def org_dir(self) -> Path:
        return self.home / "crypto" / "peerOrganizations" / self.domain

    @property
    def orderer_org_dir(self) -> Path:
        return self.home / "crypto" / "ordererOrganizations" / self.orderer_domain

    @property
    def peer_dir(self) -> Path:
        return self.org_dir / "peers" / self.peer_name

    @property
    def orderer_dir(self) -> Path:
        return self.orderer_org_dir / "orderers" / self.orderer_name

    @property
    def admin_msp(self) -> Path:
        return self.org_dir / "users" / f"Admin@{self.domain}" / "msp"

    @property
    def user_msp(self) -> Path:
        return self.org_dir / "users" / f"User1@{self.domain}" / "msp"

    @property
    def ca_cert(self) -> Path:
        return self.org_dir / "ca" / f"ca.{self.domain}-cert.pem"

    @property
    def tls_ca_cert(self) -> Path:
        return self.org_dir / "tlsca" / f"tlsca.{self.domain}-cert.pem"

    @property
    def orderer_ca_cert(self) -> Path:
        return self.orderer_org_dir / "ca" / f"ca.{self.orderer_domain}-cert.pem"

    @property
    def orderer_tls_ca_cert(self) -> Path:
        return self.orderer_org_dir / "tlsca" / f"tlsca.{self.orderer_domain}-cert.pem"

    # --- node state ----------------------------------------------------------------------------------------
    @property
    def node_dir(self) -> Path:
        return self.home / "nodes" / self.short

    @property
    def peer_cfg(self) -> Path:
        return self.node_dir / "peer"

    @property
    def orderer_cfg(self) -> Path:
        return self.node_dir / "orderer"


def orgs_of(msp_ids: list[str] | tuple[str, ...], home: Path, port_base: int) -> list[Org]:
    seen = [check_msp_id(m) for m in msp_ids]
    if len(set(seen)) != len(seen):
        raise ValueError(f"organisation MSP ids must be distinct, got {', '.join(seen)}")
    return [Org(m, i, home, port_base) for i, m in enumerate(seen)]
