"""Turn a validated rule spec into plain closures, once at load, so evaluation touches no pydantic.

Semantics: a leaf on an unknown feature (NaN or absent) is False; `all`, `any` and `not` are
ordinary boolean logic over their children. So `not: {feature: src_is_business, eq: 1}` holds
when the account is not a business *or* its profile is unknown, which lets guards stay out of
the way when profiles are missing.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable

from rules.operators import NAN, OPERATORS, Features, Predicate
from rules.spec import AllOf, AnyOf, Condition, Leaf, NotOf

Renderer = Callable[[Features], str]


def compile_condition(node: Condition) -> Predicate:
    """A predicate equivalent to the condition tree `node`."""
    if isinstance(node, AllOf):
        return _all_of(tuple(compile_condition(child) for child in node.all))
    if isinstance(node, AnyOf):
        return _any_of(tuple(compile_condition(child) for child in node.any))
    if isinstance(node, NotOf):
        inner = compile_condition(node.negated)
        return lambda features: not inner(features)
    assert isinstance(node, Leaf)
    name, threshold = node.operator
    return OPERATORS[name].compile(node.feature, threshold)


def _all_of(children: tuple[Predicate, ...]) -> Predicate:
    if len(children) == 1:
        return children[0]

    def predicate(features: Features) -> bool:
        # A plain loop: all() over a generator costs about twice as much per call here.
        for child in children:  # noqa: SIM110
            if not child(features):
                return False
        return True

    return predicate


def _any_of(children: tuple[Predicate, ...]) -> Predicate:
    if len(children) == 1:
        return children[0]

    def predicate(features: Features) -> bool:
        for child in children:  # noqa: SIM110 (see _all_of)
            if child(features):
                return True
        return False

    return predicate


def compile_summary(template: str) -> Renderer:
    """A renderer of `template` (already validated: only `{feature[:spec]}` fields).

    Unknown values read "unknown" rather than "nan", and a bare `{feature}` shows an integral
    value without a trailing ".0", since investigators read these sentences.
    """
    parts = tuple(
        (literal, name, spec or "") for literal, name, spec, _ in string.Formatter().parse(template)
    )

    def render(features: Features) -> str:
        out: list[str] = []
        for literal, name, spec in parts:
            out.append(literal)
            if name is not None:
                out.append(_format_value(features.get(name, NAN), spec))
        return "".join(out)

    return render


def _format_value(value: float, spec: str) -> str:
    value = float(value)  # callers may pass ints (or numpy scalars) despite the float contract
    if not math.isfinite(value):
        return "unknown"
    if not spec and value.is_integer():
        return str(int(value))
    return format(value, spec)


def evidence_value(value: float) -> float | int | None:
    """A feature value as an alert shows it: None when unknown, an int when integral."""
    value = float(value)  # see _format_value; also makes the result JSON-plain
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value
