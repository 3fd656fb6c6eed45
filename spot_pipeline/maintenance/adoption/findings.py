"""What the preflight found, as plain data: one finding per table (or the server) and problem, with
the step that resolves it, ordered as they are to be taken, and the report they make. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from spot_pipeline.metadata import markdown_table


class Stage(IntEnum):
    """The order of the adoption steps: each one relies on the ones before."""

    MIGRATE = 1
    DEDUPLICATE = 2
    REPAIR_KEYS = 3
    TEXT = 4
    PRIVILEGES = 5
    TIME_ZONE = 6
    NOTE = 7


@dataclass(frozen=True)
class Finding:
    stage: Stage
    subject: str  # a table, or "server"
    found: str
    step: str  # what to do; "nothing" when it needs no action

    @property
    def needs_action(self) -> bool:
        return not self.step.startswith((NOTHING, OPTIONAL))


NOTHING = "nothing"
OPTIONAL = "optional"
REPORT_COLUMNS = ("#", "table", "found", "step")


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """The findings in the order to act on them: by stage, then by table."""
    return sorted(findings, key=lambda finding: (finding.stage, finding.subject))


def report_rows(findings: Sequence[Finding]) -> list[dict[str, object]]:
    return [
        {"#": number, "table": finding.subject, "found": finding.found, "step": finding.step}
        for number, finding in enumerate(ordered(findings), start=1)
    ]


def render_report(findings: Sequence[Finding]) -> str:
    """The report as a Markdown table, then one line saying what is left to do."""
    table = markdown_table(report_rows(findings), REPORT_COLUMNS).value
    steps = sum(finding.needs_action for finding in findings)
    verdict = f"{steps} step(s) to take, in the order above." if steps else "Nothing to do: adopt as it is."
    return f"{table}\n\n{verdict}"
