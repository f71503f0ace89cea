"""What a broken rule library reports: every problem, each naming its file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Where in a rule document a value sits: mapping keys and sequence indexes, outermost first.
FieldPath = tuple[str | int, ...]


def format_field(path: FieldPath) -> str:
    """`("when", "all", 1, "feature")` as `when.all[1].feature`, the way rule authors read it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with a rule file.

    `line` is 1-based, or None when the problem concerns the whole file or directory;
    `field` is a dotted path such as `when.all[1].feature`, or "" when no field applies.
    """

    file: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class RuleLibraryError(Exception):
    """A rule library (or the screening policy beside it) that cannot be loaded; `problems`
    lists everything wrong with it."""

    def __init__(self, problems: list[RuleProblem], what: str = "rule library") -> None:
        self.problems = problems
        self.what = what
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__("\n".join([f"{what} has {count}:", *map(str, problems)]))
