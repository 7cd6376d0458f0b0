"""`bidtrace verify`: check an audit extract offline and print what holds, record by record."""

import json
from pathlib import Path

import typer

from verifier.errors import MalformedInput
from verifier.extract import CHECKS, ExtractReport, verify_extract

MARK = {True: "✓", False: "✗", None: "·"}


def render(report: ExtractReport) -> str:
    lines = [f"extract of project {report.project_id}, log {report.log_id}"]
    lines += [f"  note: {n}" for n in report.notes]
    if report.checkpoint:
        lines.append(f"checkpoint ✓ {report.checkpoint}")
    if report.anchor:
        lines.append(f"anchor ✓ {report.anchor}")
    if report.records:
        header = f"{'leaf':>8}  {'type':<18} {'occurred at':<30} {'submitter':<18} " + " ".join(
            f"{c:<9}" for c in CHECKS
        )
        lines += ["", header]
        for r in report.records:
            marks = " ".join(f"{MARK[r.checks.get(c)]:<9}" for c in CHECKS)
            lines.append(f"{r.leaf_index:>8}  {r.type:<18} {r.occurred_at:<30} {r.submitter:<18} {marks}")
            lines += [f"{'':>10}✗ {e}" for e in r.errors]
    if report.sessions:
        lines.append("")
        lines += [f"{s.name} {MARK[s.ok]} {s.detail}" for s in report.sessions]
    lines.append("")
    lines += [f"✗ {e}" for e in report.errors]
    bad = sum(1 for r in report.records if not r.ok)
    if report.ok:
        lines.append(f"VERIFIED: all {len(report.records)} records hold.")
    else:
        failed = sum(1 for s in report.sessions if not s.ok)
        lines.append(f"NOT VERIFIED: {bad} of {len(report.records)} records fail, {failed} session checks fail, "
                     f"{len(report.errors)} extract errors.")
    return "\n".join(lines)


def verify_command(
    extract: Path = typer.Argument(..., help="audit extract (.zip)"),
    trust: Path | None = typer.Option(None, help="published trust roots (JSON); default: the extract's own"),
    media: Path | None = typer.Option(None, help="folder of recording segment files to check against the log"),
) -> None:
    """Verify an audit extract offline. Exit 0 only if everything holds."""
    roots = None
    if trust is not None:
        try:
            roots = json.loads(trust.read_text())
        except (OSError, ValueError) as exc:
            typer.echo(f"✗ cannot read trust roots {trust}: {exc}", err=True)
            raise typer.Exit(2) from exc
        if not isinstance(roots, dict):
            raise MalformedInput(f"trust roots {trust} must be a JSON object")
    report = verify_extract(extract, roots, media)
    typer.echo(render(report))
    raise typer.Exit(0 if report.ok else 1)
