"""Leaf operators: each a small unit naming its threshold type and compiling to a predicate.

A predicate reads the feature mapping and answers True or False. Features are floats where NaN
(or a missing key) means "unknown", and every operator answers False on an unknown input: IEEE
comparisons with NaN are already False, and the two operators that are not plain comparisons
check for it themselves. Predicates are built once at load, so evaluation is a few closure calls.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from models.features import FEATURE_NAMES

Features = Mapping[str, float]
Predicate = Callable[[Features], bool]

NAN = math.nan
_FEATURES = frozenset(FEATURE_NAMES)


def _known_feature(name: str) -> str:
    if name not in _FEATURES:
        raise PydanticCustomError(
            "unknown_feature", f"unknown feature {name!r}{did_you_mean(name, FEATURE_NAMES)}"
        )
    return name


def did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    """A ` (did you mean 'x' or 'y'?)` hint for a misspelt name, or "" when nothing is close."""
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


# Strict, so that `gte: "8"` or `gte: true` is a load error rather than a silent coercion.
FeatureName = Annotated[str, Strict(), AfterValidator(_known_feature)]
Threshold = Annotated[float, Strict(), AllowInfNan(False)]


def _ordered(bounds: tuple[float, float]) -> tuple[float, float]:
    if bounds[0] > bounds[1]:
        raise PydanticCustomError(
            "between_order", f"between needs lo <= hi, got [{bounds[0]}, {bounds[1]}]"
        )
    return bounds


class RatioThreshold(BaseModel):
    """The argument of `ratio_gte`: the denominator feature and the minimum ratio."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    of: FeatureName
    value: Threshold


@dataclass(frozen=True, slots=True)
class Operator:
    """One leaf operator: its YAML key, the type pydantic checks its threshold against, and
    how to compile `(feature, threshold)` into a predicate."""

    name: str
    threshold_type: Any
    compile: Callable[[str, Any], Predicate]


class OperatorRegistry:
    """The operators a leaf may use, by name; registering a name twice is refused."""

    def __init__(self) -> None:
        self._operators: dict[str, Operator] = {}

    def register(self, operator: Operator) -> Operator:
        """Add `operator`; raises ValueError if its name is taken."""
        if operator.name in self._operators:
            raise ValueError(f"operator {operator.name!r} is already registered")
        self._operators[operator.name] = operator
        return operator

    def __getitem__(self, name: str) -> Operator:
        return self._operators[name]

    def __contains__(self, name: object) -> bool:
        return name in self._operators

    def __iter__(self) -> Iterator[Operator]:
        return iter(self._operators.values())

    def names(self) -> tuple[str, ...]:
        """Registered operator names, in registration order."""
        return tuple(self._operators)


OPERATORS = OperatorRegistry()


def operator(
    name: str, threshold_type: Any
) -> Callable[[Callable[[str, Any], Predicate]], Callable[[str, Any], Predicate]]:
    """Register the decorated compile function as operator `name` in OPERATORS."""

    def decorate(compile_: Callable[[str, Any], Predicate]) -> Callable[[str, Any], Predicate]:
        OPERATORS.register(Operator(name, threshold_type, compile_))
        return compile_

    return decorate


@operator("gte", Threshold)
def _gte(feature: str, threshold: float) -> Predicate:
    return lambda features: features.get(feature, NAN) >= threshold


@operator("gt", Threshold)
def _gt(feature: str, threshold: float) -> Predicate:
    return lambda features: features.get(feature, NAN) > threshold


@operator("lte", Threshold)
def _lte(feature: str, threshold: float) -> Predicate:
    return lambda features: features.get(feature, NAN) <= threshold


@operator("lt", Threshold)
def _lt(feature: str, threshold: float) -> Predicate:
    return lambda features: features.get(feature, NAN) < threshold


@operator("eq", Threshold)
def _eq(feature: str, threshold: float) -> Predicate:
    return lambda features: features.get(feature, NAN) == threshold


@operator("between", Annotated[tuple[Threshold, Threshold], AfterValidator(_ordered)])
def _between(feature: str, bounds: tuple[float, float]) -> Predicate:
    lo, hi = bounds
    return lambda features: lo <= features.get(feature, NAN) <= hi


@operator("in_list", Annotated[list[Threshold], Field(min_length=1)])
def _in_list(feature: str, values: list[float]) -> Predicate:
    # Thresholds are finite, so a NaN feature is never a member (not even by identity).
    members = frozenset(values)
    return lambda features: features.get(feature, NAN) in members


@operator("ratio_gte", RatioThreshold)
def _ratio_gte(feature: str, ratio: RatioThreshold) -> Predicate:
    of, minimum = ratio.of, ratio.value

    def predicate(features: Features) -> bool:
        denominator = features.get(of, NAN)
        # A zero or unknown denominator has no ratio; NaN != NaN catches the unknown case.
        if denominator == 0 or denominator != denominator:
            return False
        return features.get(feature, NAN) / denominator >= minimum

    return predicate
