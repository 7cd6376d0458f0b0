"""The `bidtrace` command: one entry point whose subcommands live with the package they belong to."""

import importlib

import typer

from notary.cli import extract_command, notary_app
from verifier.cli import stats_command, trust_app, verify_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tamper-evident evidence for remote bid evaluation.")
app.add_typer(notary_app, name="notary")
app.command("verify")(verify_command)
app.command("stats")(stats_command)
app.add_typer(trust_app, name="trust")
app.command("extract")(extract_command)


@app.command("demo")
def demo(
    data: str = typer.Option("data/demo", help="folder for the demo's notary, ledger and extract (wiped first)"),
    segments: int = typer.Option(300, help="recording segments across all cameras"),
    ledger: str = typer.Option("embedded", help="embedded, or fabric (the local network, brought up if needed)"),
) -> None:
    """Run one simulated remote evaluation end to end and verify its extract."""
    from pathlib import Path

    from hub.demo import run_demo

    if ledger not in ("embedded", "fabric"):
        typer.echo(f"error: --ledger must be embedded or fabric, got {ledger!r}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_demo(Path(data), segments, ledger))


def _mount_parts() -> None:
    """`bidtrace network|device|hub …` come from the packages that own them."""
    for name, module in (("network", "network.cli"), ("device", "devices.cli"), ("hub", "hub.cli")):
        try:
            part = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.add_typer(part.app, name=name)


_mount_parts()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
