"""What a check found: the typed result every check returns and the CLI renders."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One check's outcome: `name` says what was checked, `detail` what was found (and, if not ok, why)."""

    name: str
    ok: bool
    detail: str
