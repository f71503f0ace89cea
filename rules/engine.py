"""Compiled rules and the rule set the worker evaluates for every transfer."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from models.features import Party
from rules.compile import Renderer, compile_condition, compile_summary, evidence_value
from rules.operators import NAN, Features, Predicate
from rules.spec import RuleSpec


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on one transfer, with what an alert shows of it."""

    rule_id: str
    version: int
    title: str
    score: float
    evidence: dict[str, float | int | None]  # evidence features; ints where integral, None for NaN
    summary: str  # the rendered summary template, or "" when the rule has none
    suspect: Party  # the party whose account the rule suspects
    floor: float | None = None  # lowest combined score this hit allows (confirmed knowledge)


@dataclass(frozen=True, slots=True)
class Rule:
    """A loaded rule: its metadata and its condition compiled to a predicate."""

    id: str
    version: int
    title: str
    description: str
    score: float
    evidence: tuple[str, ...]
    summary: str
    source: Path
    floor: float | None
    suspect: Party
    matches: Predicate = field(repr=False, compare=False)
    render_summary: Renderer | None = field(repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec: RuleSpec, source: Path) -> Rule:
        """Compile a validated spec; `source` is the file it came from."""
        return cls(
            id=spec.id,
            version=spec.version,
            title=spec.title,
            description=spec.description,
            score=spec.score,
            evidence=tuple(spec.evidence),
            summary=spec.summary or "",
            source=source,
            floor=spec.floor,
            suspect=spec.suspect,
            matches=compile_condition(spec.when),
            render_summary=compile_summary(spec.summary) if spec.summary else None,
        )

    def hit(self, features: Features) -> RuleHit:
        """The hit this rule reports for `features` (call only when it matches)."""
        return RuleHit(
            rule_id=self.id,
            version=self.version,
            title=self.title,
            score=self.score,
            evidence={name: evidence_value(features.get(name, NAN)) for name in self.evidence},
            summary=self.render_summary(features) if self.render_summary else "",
            suspect=self.suspect,
            floor=self.floor,
        )


class RuleSet:
    """An immutable, evaluable set of rules with distinct ids.

    Rules are kept strongest first (score descending, then id), so `evaluate` returns hits in
    that order without sorting per transfer. Swap in a new RuleSet to reload a library.
    """

    __slots__ = ("_fingerprint", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        ordered = tuple(sorted(rules, key=lambda rule: (-rule.score, rule.id)))
        repeated = sorted(rule_id for rule_id, n in Counter(r.id for r in ordered).items() if n > 1)
        if repeated:
            raise ValueError(f"duplicate rule ids: {', '.join(repeated)}")
        self.rules: tuple[Rule, ...] = ordered
        listing = "\n".join(sorted(f"{rule.id}@{rule.version}" for rule in ordered))
        self._fingerprint = hashlib.sha256(listing.encode()).hexdigest()[:12]

    def evaluate(self, features: Features) -> list[RuleHit]:
        """Every rule that fires on `features`, strongest (highest score) first, ties by id."""
        return [rule.hit(features) for rule in self.rules if rule.matches(features)]

    @property
    def fingerprint(self) -> str:
        """12 hex digits of a hash of the sorted `id@version` list: names the library in force."""
        return self._fingerprint

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules, fingerprint={self._fingerprint})"
