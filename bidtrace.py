"""The `bidtrace` command: one entry point whose subcommands live with the package they belong to."""

import typer

from notary.cli import extract_command, notary_app
from verifier.cli import verify_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tamper-evident evidence for remote bid evaluation.")
app.add_typer(notary_app, name="notary")
app.command("verify")(verify_command)
app.command("extract")(extract_command)


@app.command("demo")
def demo(
    data: str = typer.Option("data/demo", help="folder for the demo's notary, ledger and extract (wiped first)"),
    segments: int = typer.Option(300, help="recording segments across all cameras"),
) -> None:
    """Run one simulated remote evaluation end to end on the embedded ledger and verify its extract."""
    from pathlib import Path

    from hub.demo import run_demo

    raise typer.Exit(run_demo(Path(data), segments))


def _mount_optional() -> None:
    try:
        from network.cli import app as network_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    app.add_typer(network_app, name="network")


_mount_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
