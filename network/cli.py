"""`bidtrace network …`: build Fabric's binaries, bring the network up or down, show it, add a city."""

import json
from pathlib import Path
from typing import Annotated

import typer

from network.build import BuildError, resolve
from network.topology import FabricNetwork, NetworkError

app = typer.Typer(help="Operate the Fabric network of the province and city centres.", no_args_is_help=True)

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="data folder (default $BIDTRACE_FABRIC_HOME or ./data/fabric)")
]


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command("build")
def build_cmd(
    bin_dir: Annotated[Path | None, typer.Option("--bin", help="use this folder of Fabric binaries as given")] = None,
    source: Annotated[
        Path | None, typer.Option("--source", help="Fabric v2.5.16 source archive or folder to build from")
    ] = None,
    force: Annotated[bool, typer.Option(help="rebuild the cache from source even if it is good")] = False,
) -> None:
    """Find or build peer, orderer, configtxgen, configtxlator, osnadmin and cryptogen; print their folder.

    Order: --bin / BIDTRACE_FABRIC_BIN, the cache, then a source archive (--source, or the one in
    ../shared/third_party/fabric/) built offline into the cache."""
    try:
        typer.echo(resolve(bin_dir, source, force).bin_dir)
    except BuildError as exc:
        _fail(exc)


@app.command()
def up(
    home: HomeOption = None,
    org: Annotated[list[str] | None, typer.Option("--org", help="organisation MSP id (repeat); first run only")] = None,
    port_base: Annotated[int | None, typer.Option(help="first loopback port (default 17000)")] = None,
) -> None:
    """Create what is missing and start every node; a second `up` only starts what is stopped."""
    try:
        FabricNetwork(home, org, port_base).up()
    except (NetworkError, BuildError, TimeoutError, RuntimeError, ValueError) as exc:
        _fail(exc)


@app.command()
def down(home: HomeOption = None) -> None:
    """Stop the processes `up` started (state is kept)."""
    stopped = FabricNetwork(home).down()
    typer.echo(f"stopped {', '.join(stopped) if stopped else 'nothing (no node was running)'}")


@app.command()
def status(home: HomeOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each node's state, health and block height, and the chaincode definition."""
    report = FabricNetwork(home).status()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"network at {report['home']}, channel {report['channel']}: {', '.join(report['organizations'])}")
    for n in report["nodes"]:
        state = "running" if n["running"] else "stopped"
        extra = "".join(
            f"  {k} {n[k]}" for k in ("health", "height", "relation", "error") if n.get(k) is not None
        )
        typer.echo(f"  {n['node']:<22} {n['endpoint']:<18} {state}{extra}")
    typer.echo(f"  chaincode: {json.dumps(report['chaincode'])}")


@app.command("add-org")
def add_org(name: str, home: HomeOption = None) -> None:
    """Add a city organisation (e.g. YantaiMSP) to the running channel, with its peer and chaincode."""
    msp_id = name if name.endswith("MSP") else f"{name}MSP"
    try:
        org = FabricNetwork(home).add_org(msp_id)
    except (NetworkError, TimeoutError, RuntimeError, ValueError) as exc:
        _fail(exc)
    else:
        typer.echo(f"added {org.msp_id}: peer {org.endpoint(org.peer_port)}")


if __name__ == "__main__":
    app()
