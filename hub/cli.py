"""`bidtrace hub …`: run the coordination hub (省协调系统)."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from hub.config import HubConfig

app = typer.Typer(no_args_is_help=True, help="Run the coordination hub (省协调系统).")

DATA = typer.Option(Path("data/hub"), "--data", envvar="BIDTRACE_HUB_DATA", help="hub data folder (state, key, CAs)")
NOTARY = typer.Option("http://127.0.0.1:8400", "--notary-url", envvar="BIDTRACE_NOTARY_URL", help="notary base URL")
DB = typer.Option(None, "--database-url", envvar="BIDTRACE_HUB_DATABASE_URL", help="SQLAlchemy URL (default SQLite)")
HUB_ID = typer.Option("hub-province", "--hub-id", help="the hub's submitter id with the notary")


def _config(data: Path, notary_url: str, database_url: str | None, hub_id: str) -> "HubConfig":
    from hub.config import HubConfig

    config = HubConfig(data_dir=data, notary_url=notary_url, hub_id=hub_id)
    if database_url:
        config.database_url = database_url
    return config


@app.command("serve")
def serve(
    data: Path = DATA, notary_url: str = NOTARY, database_url: str | None = DB, hub_id: str = HUB_ID,
    host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8500),
    access: Path | None = typer.Option(None, "--access", envvar="BIDTRACE_HUB_ACCESS",
                                       help="access configuration: the principals allowed in (JSON)"),
    insecure_local: bool = typer.Option(False, "--insecure-local",
                                        help="no access configuration: loopback only, anyone local may do anything"),
    trust: Path | None = typer.Option(None, "--trust", envvar="BIDTRACE_HUB_TRUST",
                                      help="published roots (bidtrace-trust/1) that the console checks uploaded "
                                           "extracts and receipts against"),
) -> None:
    """Serve the hub's HTTP API and run its schedule (supervision feed, objection deadlines)."""
    import ipaddress

    import uvicorn

    from hub.api import create_app
    from hub.service import Hub

    if insecure_local and (host != "localhost" and not ipaddress.ip_address(host).is_loopback):
        typer.echo(f"--insecure-local serves loopback only, not {host}", err=True)
        raise typer.Exit(2)
    config = _config(data, notary_url, database_url, hub_id)
    config.access, config.insecure_local, config.trust = access, insecure_local, trust
    from notary.access import AccessConfigError
    from notary.server import PortInUse, listen

    try:
        hub = Hub(config)
    except AccessConfigError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        try:
            hub.check_access_configured()
        except AccessConfigError as exc:
            typer.echo(f"✗ {exc}", err=True)
            raise typer.Exit(2) from exc
        try:
            sock = listen(host, port)
        except PortInUse as exc:
            typer.echo(f"✗ {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"hub {hub_id} on http://{host}:{port}, notary {notary_url}")
        uvicorn.Server(uvicorn.Config(create_app(hub), log_level="warning")).run(sockets=[sock])
    finally:
        hub.close()


@app.command("register")
def register(
    data: Path = DATA, notary_url: str = NOTARY, hub_id: str = HUB_ID,
    admin_id: str = typer.Option(..., "--admin-id", envvar="BIDTRACE_ADMIN_ID", help="notary administrator's id"),
    admin_key: Path = typer.Option(..., "--admin-key", envvar="BIDTRACE_ADMIN_KEY",
                                   help="notary administrator's private key (PEM)"),
) -> None:
    """Bind the hub's key (created in the data folder if missing) with the notary, role hub_operator."""
    from hub.service import Hub
    from notary.access import PrincipalKey

    hub = Hub(_config(data, notary_url, None, hub_id))
    try:
        result = hub.register(PrincipalKey.load(admin_key, admin_id))
    finally:
        hub.close()
    typer.echo(f"registered {result.describe()}")


@app.command("key")
def key(data: Path = DATA, hub_id: str = HUB_ID) -> None:
    """Print the hub's public key (PEM), for an operator to register by hand."""
    from notary.client import SubmitterKey

    typer.echo(SubmitterKey.load_or_create(data / "hub.key", hub_id).public_pem(), nl=False)


@app.command("login")
def login(
    hub_url: str = typer.Option("http://127.0.0.1:8500", "--hub-url", envvar="BIDTRACE_HUB_URL", help="hub base URL"),
    principal_id: str = typer.Option(..., "--principal-id", envvar="BIDTRACE_PRINCIPAL_ID",
                                     help="your principal id, as the hub's access configuration names it"),
    key: Path = typer.Option(..., "--key", envvar="BIDTRACE_PRINCIPAL_KEY", help="your private key (PEM)"),
) -> None:
    """Print a one-time link that signs you in to the hub's web console (valid two minutes, usable once).

    The request for it is signed with your key, as every API call is; the key never leaves this machine."""
    from hub.web.login import LOGIN_SECONDS, LoginRefused, request_login_link
    from notary.access import AccessConfigError, PrincipalKey

    try:
        link = request_login_link(hub_url, PrincipalKey.load(key, principal_id))
    except (AccessConfigError, LoginRefused) as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"open within {LOGIN_SECONDS} seconds (once):\n{link}")
