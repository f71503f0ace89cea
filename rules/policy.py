"""The screening policy: what a bank does with a prospective transfer, and what it tells the
customer. Pure; validated like a rule file (every problem names the file, line and field).

`rules/policy.yaml` holds score bands per outcome (`warn`, `hold`, `block`; below `warn` the
answer is `allow`), lower bands for vulnerable customers (the payer's holder is old or young
by its profile; without a profile the ordinary bands apply, since absence is no evidence),
the outcome for a payee on the account watchlist, the least outcome of a first payment far
beyond what the payer usually pays (a victim told to move their savings), and the
plain-language warnings chosen by what the transfer looks like.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from rules.loader import problem_of
from rules.operators import did_you_mean
from rules.problems import RuleLibraryError, RuleProblem, format_field
from rules.yaml_source import YamlDocument, read_yaml

Decision = Literal["allow", "warn", "hold", "block"]
DECISIONS: tuple[Decision, ...] = ("allow", "warn", "hold", "block")
Holder = Literal["elderly", "minor"]

Band = Annotated[float, Strict(), Field(ge=0, le=1)]
Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1,
                                                   max_length=400)]  # fmt: skip
Code = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Bands(BaseModel):
    """The lowest combined score of each outcome; they must rise from warn to block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn: Band
    hold: Band
    block: Band

    @model_validator(mode="after")
    def _rising(self) -> Bands:
        if not self.warn <= self.hold <= self.block:
            raise ValueError("bands must rise: warn <= hold <= block")
        return self

    def decide(self, score: float) -> Decision:
        """The outcome of a score."""
        if score >= self.block:
            return "block"
        if score >= self.hold:
            return "hold"
        return "warn" if score >= self.warn else "allow"


class Vulnerable(BaseModel):
    """Who counts as vulnerable (by the payer's profile) and their lower bands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age_at_least: Annotated[int, Strict(), Field(ge=40, le=120)]
    age_under: Annotated[int, Strict(), Field(ge=0, le=30)]
    bands: Bands

    def holder(self, age_years: float) -> Holder | None:
        """`elderly`, `minor`, or None (also for an unknown age: no profile is no evidence)."""
        if math.isnan(age_years):
            return None
        if age_years >= self.age_at_least:
            return "elderly"
        return "minor" if age_years < self.age_under else None


class Warning(BaseModel):
    """A message for the customer, shown when the transfer looks like one of `rules` (and,
    when `holder` is set, only to that kind of vulnerable customer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    text: Text
    rules: Annotated[list[Code], Field(min_length=1)]
    holder: Holder | None = None


class DefaultWarning(BaseModel):
    """The message when no listed warning fits (e.g. only the model found the transfer odd)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    text: Text


class OutsizedFirstPayment(BaseModel):
    """A payment to a payee the payer has never paid, at least `times_usual` times the payer's
    average payment of the last 30 days and at least `at_least` (in the scoring currency):
    its least outcome and the message. Unknown without that history (no evidence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times_usual: Annotated[float, Strict(), Field(gt=1)]
    at_least: Annotated[int, Strict(), Field(gt=0)]
    decision: Literal["warn", "hold", "block"]
    code: Code
    text: Text

    def applies(self, features: Mapping[str, float]) -> bool:
        """Whether the transfer with these features is such a payment."""
        multiple = features.get("amount_to_avg_30d", math.nan)
        return (
            features.get("is_first_time_payee") == 1
            and not math.isnan(multiple)
            and multiple >= self.times_usual
            and features.get("amount_minor", 0) >= self.at_least * 100
        )


class PolicySpec(BaseModel):
    """The policy file, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[int, Strict(), Field(gt=0)]
    bands: Bands
    vulnerable: Vulnerable
    listed_payee: Literal["warn", "hold", "block"]
    warnings: Annotated[list[Warning], Field(min_length=1)]
    default_warning: DefaultWarning
    outsized_first_payment: OutsizedFirstPayment | None = None

    @model_validator(mode="after")
    def _vulnerable_bands_lower(self) -> PolicySpec:
        ordinary, lower = self.bands, self.vulnerable.bands
        if lower.warn > ordinary.warn or lower.hold > ordinary.hold or lower.block > ordinary.block:
            raise ValueError("vulnerable.bands must not be above bands (they protect sooner)")
        return self


@dataclass(frozen=True, slots=True)
class CustomerWarning:
    """What the bank shows the customer before the payment goes."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The policy's answer for one screened transfer."""

    decision: Decision
    warning: CustomerWarning | None
    vulnerable: Holder | None


class ScreeningPolicy:
    """A loaded policy: decides the outcome of a screened transfer."""

    def __init__(self, spec: PolicySpec, source: Path) -> None:
        self.spec = spec
        self.source = source

    @property
    def version(self) -> int:
        """The policy file's version."""
        return self.spec.version

    def decide(
        self,
        score: float,
        rules: Sequence[str],
        *,
        payee_listed: bool,
        holder_age_years: float,
        features: Mapping[str, float] | None = None,
    ) -> Outcome:
        """The outcome for a transfer with this combined score, these rules fired (strongest
        first), its payee listed or not, its payer's holder age (NaN when unknown) and its
        features (for an outsized first payment)."""
        spec = self.spec
        holder = spec.vulnerable.holder(holder_age_years)
        bands = spec.vulnerable.bands if holder is not None else spec.bands
        decision = bands.decide(score)
        if payee_listed:
            decision = _at_least(decision, spec.listed_payee)
        outsized = spec.outsized_first_payment
        fallback = spec.default_warning
        if outsized is not None and features is not None and outsized.applies(features):
            decision = _at_least(decision, outsized.decision)
            fallback = DefaultWarning(code=outsized.code, text=outsized.text)
        if decision == "allow":
            return Outcome("allow", None, holder)
        return Outcome(decision, self._warning(rules, holder, fallback), holder)

    def _warning(
        self, rules: Sequence[str], holder: Holder | None, fallback: DefaultWarning
    ) -> CustomerWarning:
        for rule in rules:
            for warning in self.spec.warnings:
                if rule in warning.rules and warning.holder in (None, holder):
                    return CustomerWarning(warning.code, warning.text)
        return CustomerWarning(fallback.code, fallback.text)


def _at_least(decision: Decision, least: Decision) -> Decision:
    return least if DECISIONS.index(least) > DECISIONS.index(decision) else decision


_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "rule": tuple(PolicySpec.model_fields),
    "bands": tuple(Bands.model_fields),
    "vulnerable": tuple(Vulnerable.model_fields),
    "default_warning": tuple(DefaultWarning.model_fields),
    "outsized_first_payment": tuple(OutsizedFirstPayment.model_fields),
}


def load_policy(path: Path, rule_ids: Collection[str] | None = None) -> ScreeningPolicy:
    """Load and validate the policy file; with `rule_ids` (the library in force), a warning
    naming a rule outside it is a problem too. Raises `RuleLibraryError` listing every problem
    with its file, line and field."""
    document, problems = read_yaml(path)
    if document is not None and not problems:
        if not isinstance(document.data, dict):
            problems = [RuleProblem(path, document.line_of(()), "", "a policy file holds one "
                                    "mapping (version, bands, vulnerable, ...)")]  # fmt: skip
        else:
            try:
                spec = PolicySpec.model_validate(document.data)
            except ValidationError as error:
                problems = [problem_of(document, e, _KNOWN_KEYS)
                            for e in error.errors(include_url=False)]  # fmt: skip
            else:
                problems = _unknown_rules(document, spec, rule_ids)
                if not problems:
                    return ScreeningPolicy(spec, path)
    raise RuleLibraryError(problems, "screening policy")


def _unknown_rules(
    document: YamlDocument, spec: PolicySpec, rule_ids: Collection[str] | None
) -> list[RuleProblem]:
    if rule_ids is None:
        return []
    problems = []
    for i, warning in enumerate(spec.warnings):
        for j, rule in enumerate(warning.rules):
            if rule not in rule_ids:
                path = ("warnings", i, "rules", j)
                problems.append(RuleProblem(
                    document.file, document.line_of(path), format_field(path),
                    f"unknown rule {rule!r}{did_you_mean(rule, tuple(sorted(rule_ids)))}",
                ))  # fmt: skip
    return problems
