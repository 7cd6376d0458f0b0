"""Our own configuration files for Fabric's commands: core.yaml (peer), orderer.yaml, configtx.yaml, crypto-config.

They are written as JSON, which is also YAML, so no YAML library is needed. Only what a loopback network
needs is set; every duration and size the nodes read is given explicitly rather than left to zero values.
"""

import json
from pathlib import Path
from typing import Any

from network.layout import CHANNEL, HOST, Org

BUILDER_DIR = Path(__file__).resolve().parent / "builder"


def write_yaml(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
    return path


def _bccsp(keystore: str = "") -> dict[str, Any]:
    return {"Default": "SW", "SW": {"Hash": "SHA2", "Security": 256, "FileKeyStore": {"KeyStore": keystore}}}


def core_yaml(org: Org, all_orgs: list[Org]) -> dict[str, Any]:
    tls = org.peer_dir / "tls"
    peer_addr = org.endpoint(org.peer_port)
    return {
        "peer": {
            "id": org.peer_name,
            "networkId": "bidtrace",
            "listenAddress": f"{HOST}:{org.peer_port}",
            "address": peer_addr,
            "addressAutoDetect": False,
            "chaincodeListenAddress": f"{HOST}:{org.peer_chaincode_port}",
            "chaincodeAddress": org.endpoint(org.peer_chaincode_port),
            "keepalive": {
                "interval": "7200s",
                "timeout": "20s",
                "minInterval": "60s",
                "client": {"interval": "60s", "timeout": "20s"},
                "deliveryClient": {"interval": "60s", "timeout": "20s"},
            },
            "gossip": {
                "bootstrap": peer_addr,
                "useLeaderElection": False,
                "orgLeader": True,
                "membershipTrackerInterval": "5s",
                "endpoint": peer_addr,
                "maxBlockCountToStore": 10,
                "maxPropagationBurstLatency": "10ms",
                "maxPropagationBurstSize": 10,
                "propagateIterations": 1,
                "propagatePeerNum": 3,
                "pullInterval": "4s",
                "pullPeerNum": 3,
                "requestStateInfoInterval": "4s",
                "publishStateInfoInterval": "4s",
                "stateInfoRetentionInterval": "",
                "publishCertPeriod": "10s",
                "skipBlockVerification": False,
                "dialTimeout": "3s",
                "connTimeout": "2s",
                "recvBuffSize": 20,
                "sendBuffSize": 200,
                "digestWaitTime": "1s",
                "requestWaitTime": "1500ms",
                "responseWaitTime": "2s",
                "aliveTimeInterval": "5s",
                "aliveExpirationTimeout": "25s",
                # Peers started before any has joined the channel refuse each other's first handshakes;
                # the default 25 s before the next try leaves a fresh network unusable for that long.
                "reconnectInterval": "3s",
                "maxConnectionAttempts": 120,
                "msgExpirationFactor": 20,
                "externalEndpoint": peer_addr,
                "election": {
                    "startupGracePeriod": "15s",
                    "membershipSampleInterval": "1s",
                    "leaderAliveThreshold": "10s",
                    "leaderElectionDuration": "5s",
                },
                "pvtData": {
                    "pullRetryThreshold": "60s",
                    "transientstoreMaxBlockRetention": 1000,
                    "pushAckTimeout": "3s",
                    "btlPullMargin": 10,
                    "reconcileBatchSize": 10,
                    "reconcileSleepInterval": "1m",
                    "reconciliationEnabled": True,
                    "skipPullingInvalidTransactionsDuringCommit": False,
                    "implicitCollectionDisseminationPolicy": {"requiredPeerCount": 0, "maxPeerCount": 1},
                },
                "state": {
                    "enabled": False,
                    "checkInterval": "10s",
                    "responseTimeout": "3s",
                    "batchSize": 10,
                    "blockBufferSize": 20,
                    "maxRetries": 3,
                },
            },
            "tls": {
                "enabled": True,
                "clientAuthRequired": False,
                "cert": {"file": str(tls / "server.crt")},
                "key": {"file": str(tls / "server.key")},
                "rootcert": {"file": str(tls / "ca.crt")},
                "clientRootCAs": {"files": [str(o.tls_ca_cert) for o in all_orgs]},
                "clientKey": {"file": ""},
                "clientCert": {"file": ""},
            },
            "authentication": {"timewindow": "15m"},
            "fileSystemPath": str(org.node_dir / "peer-data"),
            "BCCSP": _bccsp(),
            "mspConfigPath": str(org.peer_dir / "msp"),
            "localMspId": org.msp_id,
            "localMspType": "bccsp",
            "client": {"connTimeout": "3s"},
            "deliveryclient": {
                "blockGossipEnabled": False,
                "reconnectTotalTimeThreshold": "3600s",
                "connTimeout": "3s",
                "reConnectBackoffThreshold": "3600s",
                "addressOverrides": [],
                "policy": "cft",
                "blockCensorshipTimeoutKey": "30s",
                "minimalReconnectInterval": "100ms",
            },
            "profile": {"enabled": False, "listenAddress": ""},
            "handlers": {
                "authFilters": [{"name": "DefaultAuth"}, {"name": "ExpirationCheck"}],
                "decorators": [{"name": "DefaultDecorator"}],
                "endorsers": {"escc": {"name": "DefaultEndorsement", "library": ""}},
                "validators": {"vscc": {"name": "DefaultValidation", "library": ""}},
            },
            "validatorPoolSize": 0,
            "discovery": {
                "enabled": True,
                "authCacheEnabled": True,
                "authCacheMaxSize": 1000,
                "authCachePurgeRetentionRatio": 0.75,
                "orgMembersAllowedAccess": False,
            },
            "limits": {"concurrency": {"endorserService": 2500, "deliverService": 2500, "gatewayService": 500}},
            "maxRecvMsgSize": 104857600,
            "maxSendMsgSize": 104857600,
            "gateway": {
                "enabled": True,
                "endorsementTimeout": "30s",
                "broadcastTimeout": "30s",
                "dialTimeout": "2m",
            },
        },
        "vm": {"endpoint": ""},
        "chaincode": {
            "id": {"path": "", "name": ""},
            "builder": "",
            "pull": False,
            "golang": {"runtime": "", "dynamicLink": False},
            "java": {"runtime": ""},
            "node": {"runtime": ""},
            "externalBuilders": [
                {"name": "bidtrace-ccaas", "path": str(BUILDER_DIR), "propagateEnvironment": ["HOME"]}
            ],
            "installTimeout": "300s",
            "startuptimeout": "300s",
            "executetimeout": "30s",
            "mode": "net",
            "keepalive": 0,
            "system": {"_lifecycle": "enable", "cscc": "enable", "lscc": "enable", "qscc": "enable"},
            "logging": {"level": "info", "shim": "warning", "format": "%{time} %{level} %{message}"},
        },
        "ledger": {
            "state": {
                "stateDatabase": "goleveldb",
                "totalQueryLimit": 100000,
                "couchDBConfig": {
                    "couchDBAddress": "",
                    "username": "",
                    "password": "",
                    "maxRetries": 3,
                    "maxRetriesOnStartup": 10,
                    "requestTimeout": "35s",
                    "internalQueryLimit": 1000,
                    "maxBatchUpdateSize": 1000,
                    "createGlobalChangesDB": False,
                    "cacheSize": 64,
                },
            },
            "history": {"enableHistoryDatabase": True},
            "pvtdataStore": {
                "collElgProcMaxDbBatchSize": 5000,
                "collElgProcDbBatchesInterval": 1000,
                "deprioritizedDataReconcilerInterval": "60m",
                "purgeInterval": 100,
                "purgedKeyAuditLogging": True,
            },
            "snapshots": {"rootDir": str(org.node_dir / "peer-data" / "snapshots")},
        },
        "operations": {
            "listenAddress": f"{HOST}:{org.peer_operations_port}",
            "tls": {"enabled": False, "cert": {"file": ""}, "key": {"file": ""},
                    "clientAuthRequired": False, "clientRootCAs": {"files": []}},
        },
        "metrics": {"provider": "disabled"},
    }


def orderer_yaml(org: Org) -> dict[str, Any]:
    tls = org.orderer_dir / "tls"
    data = org.node_dir / "orderer-data"
    return {
        "General": {
            "ListenAddress": HOST,
            "ListenPort": org.orderer_port,
            "TLS": {
                "Enabled": True,
                "PrivateKey": str(tls / "server.key"),
                "Certificate": str(tls / "server.crt"),
                "RootCAs": [str(tls / "ca.crt")],
                "ClientAuthRequired": False,
                "ClientRootCAs": [],
            },
            "Keepalive": {"ServerMinInterval": "60s", "ServerInterval": "7200s", "ServerTimeout": "20s"},
            "MaxRecvMsgSize": 104857600,
            "MaxSendMsgSize": 104857600,
            "Cluster": {
                "SendBufferSize": 100,
                "ClientCertificate": str(tls / "server.crt"),
                "ClientPrivateKey": str(tls / "server.key"),
                "DialTimeout": "5s",
                "RPCTimeout": "7s",
                "ReplicationBufferSize": 20971520,
                "ReplicationPullTimeout": "5s",
                "ReplicationRetryTimeout": "5s",
                "ReplicationBackgroundRefreshInterval": "5m",
                "ReplicationMaxRetries": 12,
                "CertExpirationWarningThreshold": "168h",
            },
            "BootstrapMethod": "none",
            "BootstrapFile": "",
            "LocalMSPDir": str(org.orderer_dir / "msp"),
            "LocalMSPID": org.orderer_msp_id,
            "Profile": {"Enabled": False, "Address": ""},
            "BCCSP": _bccsp(),
            "Authentication": {"TimeWindow": "15m", "NoExpirationChecks": False},
        },
        "FileLedger": {"Location": str(data / "ledger")},
        "Debug": {"BroadcastTraceDir": "", "DeliverTraceDir": ""},
        "Operations": {
            "ListenAddress": f"{HOST}:{org.orderer_operations_port}",
            "TLS": {"Enabled": False, "Certificate": "", "PrivateKey": "",
                    "ClientAuthRequired": False, "ClientRootCAs": []},
        },
        "Metrics": {"Provider": "disabled"},
        "Admin": {
            "ListenAddress": f"{HOST}:{org.orderer_admin_port}",
            "TLS": {
                "Enabled": True,
                "Certificate": str(tls / "server.crt"),
                "PrivateKey": str(tls / "server.key"),
                "RootCAs": [str(tls / "ca.crt")],
                "ClientAuthRequired": True,
                "ClientRootCAs": [str(tls / "ca.crt")],
            },
        },
        "ChannelParticipation": {"Enabled": True, "MaxRequestBodySize": "1 MB"},
        "Consensus": {"WALDir": str(data / "etcdraft" / "wal"), "SnapDir": str(data / "etcdraft" / "snapshot"),
                      "EvictionSuspicion": "10m"},
    }


def crypto_config(orgs: list[Org]) -> dict[str, Any]:
    sans = ["localhost", HOST]
    return {
        "OrdererOrgs": [
            {
                "Name": o.orderer_msp_id.removesuffix("MSP"),
                "Domain": o.orderer_domain,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": "orderer0", "SANS": sans}],
            }
            for o in orgs
        ],
        "PeerOrgs": [
            {
                "Name": o.msp_id.removesuffix("MSP"),
                "Domain": o.domain,
                "EnableNodeOUs": True,
                "Template": {"Count": 1, "SANS": sans},
                "Users": {"Count": 1},
            }
            for o in orgs
        ],
    }


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def peer_org(o: Org) -> dict[str, Any]:
    m = o.msp_id
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(o.org_dir / "msp"),
        "Policies": {
            "Readers": _sig(f"OR('{m}.admin', '{m}.peer', '{m}.client')"),
            "Writers": _sig(f"OR('{m}.admin', '{m}.client')"),
            "Admins": _sig(f"OR('{m}.admin')"),
            "Endorsement": _sig(f"OR('{m}.peer')"),
        },
        "AnchorPeers": [{"Host": HOST, "Port": o.peer_port}],
    }


def orderer_org(o: Org) -> dict[str, Any]:
    m = o.orderer_msp_id
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(o.orderer_org_dir / "msp"),
        "Policies": {
            "Readers": _sig(f"OR('{m}.member')"),
            "Writers": _sig(f"OR('{m}.member')"),
            "Admins": _sig(f"OR('{m}.admin')"),
        },
        "OrdererEndpoints": [o.endpoint(o.orderer_port)],
    }


def configtx(orgs: list[Org], orderers: list[Org], batch_timeout: str = "500ms") -> dict[str, Any]:
    """One profile, `EvidenceChannel`: Raft ordering by `orderers`, the application of `orgs`."""
    consenters = [
        {
            "Host": HOST,
            "Port": o.orderer_port,
            "ClientTLSCert": str(o.orderer_dir / "tls" / "server.crt"),
            "ServerTLSCert": str(o.orderer_dir / "tls" / "server.crt"),
        }
        for o in orderers
    ]
    return {
        "Organizations": [peer_org(o) for o in orgs] + [orderer_org(o) for o in orderers],
        "Profiles": {
            "EvidenceChannel": {
                "Policies": {
                    "Readers": _meta("ANY Readers"),
                    "Writers": _meta("ANY Writers"),
                    "Admins": _meta("MAJORITY Admins"),
                },
                "Capabilities": {"V2_0": True},
                "Orderer": {
                    "OrdererType": "etcdraft",
                    "BatchTimeout": batch_timeout,
                    "BatchSize": {
                        "MaxMessageCount": 500,
                        "AbsoluteMaxBytes": "10 MB",
                        "PreferredMaxBytes": "2 MB",
                    },
                    "EtcdRaft": {
                        "Consenters": consenters,
                        "Options": {
                            "TickInterval": "500ms",
                            "ElectionTick": 10,
                            "HeartbeatTick": 1,
                            "MaxInflightBlocks": 5,
                            "SnapshotIntervalSize": "16 MB",
                        },
                    },
                    "Organizations": [orderer_org(o) for o in orderers],
                    "Policies": {
                        "Readers": _meta("ANY Readers"),
                        "Writers": _meta("ANY Writers"),
                        "Admins": _meta("MAJORITY Admins"),
                        "BlockValidation": _meta("ANY Writers"),
                    },
                    "Capabilities": {"V2_0": True},
                },
                "Application": {
                    "Organizations": [peer_org(o) for o in orgs],
                    "Policies": {
                        "Readers": _meta("ANY Readers"),
                        "Writers": _meta("ANY Writers"),
                        "Admins": _meta("MAJORITY Admins"),
                        "LifecycleEndorsement": _meta("MAJORITY Endorsement"),
                        "Endorsement": _meta("MAJORITY Endorsement"),
                    },
                    "Capabilities": {"V2_5": True},
                },
            }
        },
    }


def connection_json(o: Org) -> dict[str, Any]:
    return {"address": o.endpoint(o.chaincode_port), "dial_timeout": "10s", "tls_required": False}


__all__ = ["CHANNEL", "configtx", "connection_json", "core_yaml", "crypto_config", "orderer_yaml", "write_yaml"]
