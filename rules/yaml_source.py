"""Read one rule file: the plain data, plus the line on which every field path starts.

PyYAML's composed node tree keeps source marks that the constructed data loses, so the file is
composed once, its marks indexed by field path, and the same tree constructed into data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from rules.problems import FieldPath, RuleProblem, format_field


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed rule file: its data and a map from field path to 1-based line."""

    file: Path
    data: object
    lines: dict[FieldPath, int]

    def line_of(self, path: FieldPath) -> int:
        """The line of `path`, or of its nearest enclosing field when `path` itself is absent."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.lines[()]


def read_yaml(file: Path) -> tuple[YamlDocument | None, list[RuleProblem]]:
    """Parse `file`; a document comes back unless the file cannot be read or parsed at all."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleProblem(file, None, "", f"cannot read file: {exc}")]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [RuleProblem(file, None, "", "file is empty; expected one rule")]
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # PyYAML phrases these as "<context> ... <problem>", e.g. "while parsing a flow
        # sequence (line 7), expected ',' or ']', but got ':'".
        context = exc.context or ""
        if context and exc.context_mark is not None:
            context += f" (line {exc.context_mark.line + 1})"
        reason = ", ".join(part for part in (context, exc.problem) if part)
        return None, [RuleProblem(file, line, "", f"YAML syntax error: {reason}")]
    except yaml.YAMLError as exc:
        return None, [RuleProblem(file, None, "", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    lines: dict[FieldPath, int] = {}
    problems: list[RuleProblem] = []
    _index(node, (), lines, problems, file)
    return YamlDocument(file, data, lines), problems


def _index(
    node: yaml.Node,
    path: FieldPath,
    lines: dict[FieldPath, int],
    problems: list[RuleProblem],
    file: Path,
) -> None:
    # A key's own line wins over its value's: a block sequence value starts on the next line.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                # PyYAML silently keeps the last of two equal keys; a rule author never means that.
                line = key_node.start_mark.line + 1
                problems.append(RuleProblem(file, line, format_field(child), "duplicate key"))
            seen.add(key)
            lines.setdefault(child, key_node.start_mark.line + 1)
            _index(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), lines, problems, file)
