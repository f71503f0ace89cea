"""The typed shape of one rule file, validated by pydantic.

A condition node is `{all: [...]}`, `{any: [...]}`, `{not: node}`, or a leaf
`{feature: NAME, <operator>: threshold}` with exactly one operator from `OPERATORS`. The leaf
model is generated from the operator registry, so each operator's threshold is checked by its
own type and an unknown operator is an unknown key.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    Tag,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.features import FEATURE_NAMES, Party
from rules.operators import OPERATORS, FeatureName, did_you_mean

# Discriminator tags show up in pydantic error locations; the angle brackets tell them apart
# from real keys so that the loader can drop them from the field path.
CONDITION_TAGS = frozenset({"<all>", "<any>", "<not>", "<leaf>"})

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def _snake_case(value: str) -> str:
    if not _SNAKE_CASE.fullmatch(value):
        raise PydanticCustomError("rule_id", f"rule id {value!r} must be snake_case")
    return value


def _valid_template(template: str) -> str:
    """Allow only `{feature}` or `{feature:spec}` fields, each spec valid for a float."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PydanticCustomError("summary", f"bad template: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if conversion is not None or "{" in (spec or ""):
            raise PydanticCustomError("summary", f"field {{{name}}}: only {{feature:spec}} allowed")
        if name not in FEATURE_NAMES:
            hint = did_you_mean(name, FEATURE_NAMES)
            raise PydanticCustomError("summary", f"unknown feature {name!r} in template{hint}")
        try:
            format(1.5, spec or "")
        except ValueError:
            raise PydanticCustomError(
                "summary", f"format spec {spec!r} of {{{name}}} does not format a number"
            ) from None
    return template


def _distinct(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise PydanticCustomError("evidence", "evidence lists a feature twice")
    return names


Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
RuleId = Annotated[str, Strict(), StringConstraints(max_length=64), AfterValidator(_snake_case)]
Version = Annotated[int, Strict(), Field(gt=0)]
Score = Annotated[float, Strict(), Field(gt=0, le=1)]
Evidence = Annotated[list[FeatureName], Field(min_length=1), AfterValidator(_distinct)]
Summary = Annotated[str, Strict(), AfterValidator(_valid_template)]


def _condition_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in ("all", "any", "not"):
        if key in value:
            return f"<{key}>"
    return "<leaf>"


class _Leaf(BaseModel):
    """Base of the generated leaf model: `feature` plus one optional field per operator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: FeatureName

    @property
    def operator(self) -> tuple[str, Any]:
        """The one operator set on this leaf and its threshold."""
        (name,) = (name for name in OPERATORS.names() if getattr(self, name) is not None)
        return name, getattr(self, name)

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> _Leaf:
        used = [name for name in OPERATORS.names() if getattr(self, name) is not None]
        if len(used) != 1:
            found = f"has {', '.join(used)}" if used else "has none"
            raise PydanticCustomError(
                "operator_count",
                f"a leaf needs exactly one operator of {', '.join(OPERATORS.names())}; it {found}"
                + (" (combine conditions with all: [...])" if used else ""),
            )
        return self


if TYPE_CHECKING:
    Leaf = _Leaf
else:
    Leaf = create_model(
        "Leaf",
        __base__=_Leaf,
        **{op.name: (op.threshold_type | None, None) for op in OPERATORS},
    )


class AllOf(BaseModel):
    """Matches when every child matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: Annotated[list[Condition], Field(min_length=1)]


class AnyOf(BaseModel):
    """Matches when at least one child matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    any: Annotated[list[Condition], Field(min_length=1)]


class NotOf(BaseModel):
    """Matches when its child does not; `not` of a leaf on an unknown feature therefore matches,
    which is how a guard reads "not known to be a business"."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    negated: Condition = Field(alias="not")


Condition = Annotated[
    Annotated[AllOf, Tag("<all>")]
    | Annotated[AnyOf, Tag("<any>")]
    | Annotated[NotOf, Tag("<not>")]
    | Annotated[Leaf, Tag("<leaf>")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition is a mapping: {all: [..]}, {any: [..]}, {not: ..}"
        " or {feature: NAME, <operator>: threshold}",
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


class RuleSpec(BaseModel):
    """One rule file, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    version: Version
    title: Text
    description: Text
    when: Condition
    # The party whose account the rule suspects of fraud (a mule, a seller of its card): the
    # account an alert and its case are about, and the one an investigator's decision lists
    # or suppresses.
    suspect: Party
    score: Score
    # Lowest combined score a hit gives, whatever the model says: for confirmed knowledge
    # (a watchlist), not for patterns the model should be able to overrule.
    floor: Score | None = None
    evidence: Evidence
    summary: Summary | None = None
