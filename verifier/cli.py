"""`bidtrace verify` and `bidtrace trust`: check an audit extract offline against roots the user pinned.

Exit status of verify: 0 VERIFIED (every check held against the user's roots), 1 FAILED (a check failed,
or the extract cannot be read), 2 usage error (bad option, unreadable trust file), 3 UNTRUSTED (internally
consistent, but no root the user chose vouches for it: the fingerprints it would need are printed).
"""

import json
import unicodedata
from pathlib import Path

import typer

from verifier.errors import MalformedInput
from verifier.extract import CHECKS, ExtractReport, Verdict, verify_extract
from verifier.report import LANGUAGES, render_html, write_pdf
from verifier.signals import bid_rigging_signals
from verifier.statistics import check_month, month_of, monthly_statistics
from verifier.trust import TrustRoots, TrustStore, load_trust_file

MARK = {True: "✓", False: "✗", None: "·"}
USAGE_ERROR = 2

trust_app = typer.Typer(no_args_is_help=True, help="Pin, list and remove the published roots verify trusts.")


def _verdict_line(report: ExtractReport) -> str:
    verdict = report.verdict
    if verdict is Verdict.VERIFIED:
        return f"VERIFIED: all {len(report.records)} records and every check hold against the roots you chose."
    if verdict is Verdict.UNTRUSTED:
        return (f"UNTRUSTED: the extract is consistent with itself ({len(report.records)} records), but no root you "
                "chose vouches for it. Compare these fingerprints with the published ones, then pin them "
                "(bidtrace trust import FILE) or pass --trust FILE:")
    bad = sum(1 for r in report.records if not r.ok)
    failed = sum(1 for s in [*report.findings, *report.sessions] if not s.ok) + len(report.errors)
    return f"FAILED: {failed} check(s) fail, {bad} of {len(report.records)} records fail."


def render(report: ExtractReport, verbose: bool = False) -> str:
    lines = [_verdict_line(report)]
    if report.verdict is Verdict.UNTRUSTED:
        lines += [f"  needs {fp}" for fp in report.needed_roots]
    lines += [f"✗ {e}" for e in report.errors]
    lines += ["", f"extract of project {report.project_id}, log {report.log_id}"]
    lines += [f"  note: {n}" for n in report.notes]
    if not report.trusted and report.findings:
        lines.append("checked against the keys the extract names itself (not chosen by you):")
    lines += [f"{f.name} {MARK[f.ok]} {f.detail}" for f in report.findings]
    if report.records:
        summary = " · ".join(
            f"{c} {sum(1 for r in report.records if r.checks.get(c))}/{len(report.records)}" for c in CHECKS)
        lines.append(f"records {MARK[all(r.ok for r in report.records)]} {summary}")
        shown = report.records if verbose else [r for r in report.records if not r.ok]
        if shown:
            header = f"{'leaf':>8}  {'type':<18} {'occurred at':<32} {'submitter':<20} " + " ".join(
                f"{c:<9}" for c in CHECKS)
            lines += ["", header]
            for r in shown:
                marks = " ".join(f"{MARK[r.checks.get(c)]:<9}" for c in CHECKS)
                lines.append(f"{r.leaf_index:>8}  {r.type:<18} {r.occurred_at:<32} {r.submitter:<20} {marks}")
                lines += [f"{'':>10}✗ {e}" for e in r.errors]
    if report.sessions:
        lines.append("")
        lines += [f"{s.name} {MARK[s.ok]} {s.detail}" for s in report.sessions]
    return "\n".join(printable(line) for line in lines)


def printable(text: str) -> str:
    """`text` with every control, format and separator character escaped. Reasons, ids and names in a report
    come from the evidence: a newline there could add a line reading "VERIFIED", a terminal escape could move
    the cursor up and overwrite the verdict, a bidi override could reverse what is shown."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _roots(trust: Path | None) -> TrustRoots:
    try:
        return load_trust_file(trust) if trust is not None else TrustStore().load()
    except MalformedInput as exc:
        typer.echo(printable(f"✗ {exc}"), err=True)
        raise typer.Exit(USAGE_ERROR) from exc


def verify_command(
    extract: Path = typer.Argument(..., help="audit extract (.zip)"),
    trust: Path | None = typer.Option(None, help="published trust roots (bidtrace-trust/1 JSON); default: the "
                                                  "roots pinned with `bidtrace trust import`"),
    media: Path | None = typer.Option(None, help="folder of recording segment files to check against the log"),
    media_partial: bool = typer.Option(False, help="with --media: a partial copy is expected; count missing "
                                                   "files instead of failing"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="one row per record, not only failing ones"),
    report_html: Path | None = typer.Option(None, "--report", help="also write the court's report as HTML"),
    report_pdf: Path | None = typer.Option(None, "--pdf", help="also write the court's report as an A4 PDF"),
    lang: str = typer.Option("zh", "--lang", help="language of the report: zh or en"),
) -> None:
    """Verify an audit extract offline. Exit 0 VERIFIED, 1 FAILED, 2 usage error, 3 UNTRUSTED."""
    if lang not in LANGUAGES:
        typer.echo(f"✗ --lang must be one of {', '.join(LANGUAGES)}, got {lang!r}", err=True)
        raise typer.Exit(USAGE_ERROR)
    report = verify_extract(extract, _roots(trust), media, media_partial)
    typer.echo(render(report, verbose))
    if report_html is not None or report_pdf is not None:
        _write_reports(report, extract, report_html, report_pdf, lang)
    raise typer.Exit(report.verdict.exit_code)


def _write_reports(report: ExtractReport, extract: Path, html_out: Path | None, pdf_out: Path | None,
                   lang: str) -> None:
    """The court's report of the findings just printed; the verdict's exit status stays the verdict's."""
    try:
        html = render_html(report, extract, lang)
    except OSError as exc:
        # The extract itself was unreadable: the FAILED verdict above says why; there is nothing to report on.
        typer.echo(f"✗ no report written: cannot read {extract}: {exc.strerror}", err=True)
        return
    if html_out is not None:
        html_out.write_text(html, encoding="utf-8")
        typer.echo(f"wrote report {html_out}")
    if pdf_out is not None:
        try:
            missing = write_pdf(html, pdf_out)
        except OSError as exc:
            # WeasyPrint cannot load pango: say what to install instead of a traceback.
            typer.echo(f"✗ no PDF written: {exc} (the PDF needs pango and a CJK font: on Debian "
                       "`apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk`)", err=True)
            return
        typer.echo(f"wrote report {pdf_out}")
        if missing:
            shown = " ".join(f"U+{ord(c):04X}" for c in missing[:10])
            typer.echo(f"✗ {len(missing)} character(s) have no glyph in any installed font and show as boxes: "
                       f"{shown} (install fonts-noto-cjk)", err=True)


def stats_command(
    extract: Path = typer.Argument(..., help="audit extract (.zip)"),
    trust: Path | None = typer.Option(None, help="published trust roots; default: the roots pinned in the trust "
                                                  "store"),
    month: list[str] = typer.Option([], help="YYYY-MM (repeatable); default: every month the extract covers"),
    as_json: bool = typer.Option(False, "--json", help="print JSON: {\"statistics\": [...], \"signals\": [...]}"),
) -> None:
    """Monthly statistics and bid-rigging signals of a verified extract, computed as the hub computes them.
    Only a VERIFIED extract is counted; otherwise the verdict is printed and its exit status returned."""
    for m in month:
        try:
            check_month(m)
        except MalformedInput as exc:
            typer.echo(f"✗ --month: {exc}", err=True)
            raise typer.Exit(USAGE_ERROR) from exc
    report = verify_extract(extract, _roots(trust))
    if report.verdict is not Verdict.VERIFIED:
        typer.echo(printable(_verdict_line(report)))
        typer.echo("statistics are computed only from an extract that verifies (run bidtrace verify for why)")
        raise typer.Exit(report.verdict.exit_code)
    records = [(r.leaf_index, report.entries[r.leaf_index].record) for r in report.records]
    months = month or sorted({m for m in (month_of(record) for _, record in records) if m is not None})
    figures = [monthly_statistics(records, m) for m in months]
    signals = bid_rigging_signals(records)
    if as_json:
        typer.echo(json.dumps({"project_id": report.project_id, "statistics": [f.encode() for f in figures],
                               "signals": [s.encode() for s in signals]}, ensure_ascii=False, sort_keys=True))
        return
    typer.echo(printable(f"extract of project {report.project_id}: VERIFIED, {len(records)} records"))
    for f in figures:
        for line in f.lines():
            typer.echo(printable(line))
    typer.echo(f"{len(signals)} bid-rigging signal(s) (signals, not verdicts)")
    for signal in signals:
        typer.echo(printable(f"  {signal.kind}: {signal.explanation}; leaves {', '.join(map(str, signal.leaves))}"))


@trust_app.command("import")
def trust_import(file: Path = typer.Argument(..., help="published roots (bidtrace-trust/1 JSON)")) -> None:
    """Pin the roots in FILE. Compare their fingerprints with the published ones first."""
    store = TrustStore()
    try:
        added = store.import_file(file)
    except MalformedInput as exc:
        typer.echo(printable(f"✗ {exc}"), err=True)
        raise typer.Exit(USAGE_ERROR) from exc
    described = added.describe()
    typer.echo(f"pinned {len(described)} new root(s) in {store.path}")
    for line in described:
        typer.echo(printable(f"  + {line}"))


@trust_app.command("list")
def trust_list() -> None:
    """Every pinned root with its fingerprint."""
    store = TrustStore()
    try:
        roots = store.load()
    except MalformedInput as exc:
        typer.echo(printable(f"✗ {exc}"), err=True)
        raise typer.Exit(USAGE_ERROR) from exc
    lines = roots.describe()
    typer.echo(f"{len(lines)} pinned root(s) in {store.path}")
    for line in lines:
        typer.echo(printable(f"  {line}"))


@trust_app.command("remove")
def trust_remove(fingerprint: str = typer.Argument(..., help="fingerprint as `trust list` shows it")) -> None:
    """Unpin the root with this fingerprint."""
    store = TrustStore()
    removed = store.remove(fingerprint)
    if not removed:
        typer.echo(f"✗ no pinned root has fingerprint {fingerprint}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {removed} root(s) with fingerprint {fingerprint}")
