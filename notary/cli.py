"""`bidtrace notary …` and `bidtrace extract`: run the notary, audit its log, write extracts."""

import os
from pathlib import Path

import typer

from notary.service import Notary, NotaryConfig

notary_app = typer.Typer(no_args_is_help=True, help="Run and inspect a notary.")


def _config(data: Path, database_url: str | None, ledger: str, log_id: str, org: str) -> NotaryConfig:
    config = NotaryConfig(data_dir=data, ledger=ledger, log_id=log_id, org=org)
    if database_url:
        config.database_url = database_url
    return config


DATA = typer.Option(Path("data/notary"), "--data", envvar="BIDTRACE_DATA", help="notary data folder")
DB = typer.Option(None, "--database-url", envvar="BIDTRACE_DATABASE_URL", help="SQLAlchemy URL (default SQLite)")
LEDGER = typer.Option("embedded", help="embedded or fabric")
LOG_ID = typer.Option("province", help="this notary's log id")
ORG = typer.Option("ProvinceMSP", help="organisation (MSP id) of this notary")


@notary_app.command("serve")
def serve(
    data: Path = DATA, database_url: str | None = DB, ledger: str = LEDGER, log_id: str = LOG_ID, org: str = ORG,
    host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8400),
    seal_interval: float = typer.Option(1.0, help="seconds between checkpoints"),
    workers: int = typer.Option(1, min=1, max=64, help="HTTP worker processes (one sequencer appends for all)"),
    access: Path | None = typer.Option(None, "--access", envvar="BIDTRACE_ACCESS",
                                       help="access configuration: the principals allowed in (JSON)"),
    insecure_local: bool = typer.Option(False, "--insecure-local",
                                        help="no access configuration: loopback only, anyone local may do anything"),
    max_body: int = typer.Option(32 * 1024 * 1024, envvar="BIDTRACE_MAX_BODY", help="largest request body, bytes"),
    max_in_flight: int = typer.Option(256, min=1, envvar="BIDTRACE_MAX_IN_FLIGHT",
                                      help="submissions one worker takes at once; beyond them it answers 503"),
) -> None:
    """Serve the notary HTTP API and anchor checkpoints on the ledger."""
    import ipaddress

    import uvicorn

    from notary.api import create_app
    from notary.api.worker import HTTP, LOOP

    config = _config(data, database_url, ledger, log_id, org)
    config.seal_interval = seal_interval
    config.access, config.insecure_local, config.max_body_bytes = access, insecure_local, max_body
    config.max_in_flight = max_in_flight
    if insecure_local and host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        typer.echo(f"--insecure-local serves loopback only, not {host}", err=True)
        raise typer.Exit(2)
    from notary.access import AccessConfigError

    try:
        notary = Notary(config)
    except AccessConfigError as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        notary.check_access_configured()
    except AccessConfigError as exc:
        notary.close()
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    from notary.server import PortInUse, check_port_free, listen

    try:
        sock = listen(host, port) if workers == 1 else None
        if sock is None:
            check_port_free(host, port)
    except PortInUse as exc:
        notary.close()
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"notary {config.log_id} ({notary.key.vkey}) on http://{host}:{port}, ledger {config.ledger}, "
               f"{workers} worker(s)")
    try:
        if sock is not None:
            app = create_app(notary)
            uvicorn.Server(uvicorn.Config(app, log_level="warning", loop=LOOP, http=HTTP)).run(sockets=[sock])
            return
        # Workers rebuild the same notary from the environment; this process seals and anchors.
        os.environ.update({
            "BIDTRACE_DATA": str(config.data_dir), "BIDTRACE_DATABASE_URL": config.url,
            "BIDTRACE_LEDGER": config.ledger, "BIDTRACE_LOG_ID": config.log_id, "BIDTRACE_ORG": config.org,
            "BIDTRACE_ACCESS": str(access or ""), "BIDTRACE_INSECURE_LOCAL": "1" if insecure_local else "",
            "BIDTRACE_MAX_BODY": str(max_body), "BIDTRACE_MAX_IN_FLIGHT": str(max_in_flight),
        })
        notary.start()
        from notary.api.worker import supervise
        from notary.sequencer import Sequencer

        supervise(host, port, workers, Sequencer(notary.log))
    finally:
        notary.close()


@notary_app.command("audit")
def audit(
    data: Path = DATA, database_url: str | None = DB, ledger: str = LEDGER, log_id: str = LOG_ID, org: str = ORG,
) -> None:
    """Re-check the whole log against itself and the ledger's anchors. Exit 1 on any discrepancy."""
    from notary.audit import audit_log

    notary = Notary(_config(data, database_url, ledger, log_id, org))
    try:
        problems = audit_log(notary.log, notary.ledger)
    finally:
        notary.close()
    for problem in problems:
        typer.echo(f"✗ {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"✓ log {notary.log.log_id}: {notary.log.size} leaves verify and agree with the ledger")


NOTARY_KEY = "notary.key"  # every notary's data folder holds its checkpoint key (see notary.service)
_SEARCH_DEPTH = 3
_NOT_SEARCHED = {".git", ".venv", "node_modules", "__pycache__"}


def _notaries_under(top: Path, depth: int = _SEARCH_DEPTH) -> list[Path]:
    """Data folders of notaries at most `depth` levels under `top` (demo runs keep theirs in DIR/notary)."""
    found = [top] if (top / NOTARY_KEY).is_file() else []
    if depth > 0:
        try:
            children = sorted(p for p in top.iterdir() if p.is_dir() and p.name not in _NOT_SEARCHED)
        except OSError:
            return found
        for child in children:
            found += _notaries_under(child, depth - 1)
    return found


def _existing_notary(data: Path | None) -> Path:
    """The notary the user means: the folder given, or the only one found here. Opening a folder that holds
    none would create a new, empty notary, whose extract proves nothing, so that is refused instead."""
    default = Path("data/notary")
    if data is None and (default / NOTARY_KEY).is_file():
        return default
    if data is not None and (data / NOTARY_KEY).is_file():
        return data
    found = [p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p
             for p in _notaries_under(Path.cwd().resolve())]
    if data is None and len(found) == 1:
        typer.echo(f"using the notary in {found[0]} (the only one found here; pass --data DIR to choose)", err=True)
        return found[0]
    where = f"{data} holds no notary (no {NOTARY_KEY})" if data is not None else \
        f"no --data given and {default} holds no notary"
    if found:
        listing = "; notaries found here: " + ", ".join(str(p) for p in found) + " (pass one with --data DIR)"
    else:
        listing = (f"; none found within {_SEARCH_DEPTH} folders of here: pass the folder `bidtrace notary serve` "
                   "or `bidtrace demo` used, with --data DIR")
    typer.echo(f"✗ {where}{listing}", err=True)
    raise typer.Exit(USAGE_ERROR)


USAGE_ERROR = 2


def extract_command(
    project: str = typer.Option(..., "--project", help="招标项目编号 (project id)"),
    out: Path | None = typer.Option(None, help="output file (default extract-<project>.zip)"),
    disclose: bool = typer.Option(False, help="include openings of personal-data commitments"),
    data: Path | None = typer.Option(None, "--data", envvar="BIDTRACE_DATA",
                                     help="notary data folder (default: data/notary, or the only notary found here)"),
    database_url: str | None = DB, ledger: str = LEDGER, log_id: str = LOG_ID, org: str = ORG,
) -> None:
    """Write the audit extract of one project (zip), proven against the newest anchored checkpoint."""
    from notary.extract import NotAnchored, build_extract

    notary = Notary(_config(_existing_notary(data), database_url, ledger, log_id, org))
    try:
        data_bytes = build_extract(notary.log, notary.ledger, project, disclose)
    except NotAnchored as exc:
        typer.echo(f"✗ {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        notary.close()
    path = out or Path(f"extract-{project}.zip")
    path.write_bytes(data_bytes)
    typer.echo(f"wrote {path} ({len(data_bytes)} bytes)")


@notary_app.command("roots")
def roots(
    out: Path = typer.Option(Path("published-roots.json"), help="where to write the roots"),
    data: Path = DATA, database_url: str | None = DB, ledger: str = LEDGER, log_id: str = LOG_ID, org: str = ORG,
) -> None:
    """Write the roots this notary and its ledger publish (bidtrace-trust/2), and print their fingerprints:
    publish the fingerprints where courts can compare them before pinning the file."""
    from notary.extract import published_roots

    notary = Notary(_config(data, database_url, ledger, log_id, org))
    try:
        published = published_roots(notary.log, notary.ledger)
    finally:
        notary.close()
    out.write_bytes(published.encode())
    typer.echo(f"wrote {out}")
    for line in published.describe():
        typer.echo(f"  {line}")
