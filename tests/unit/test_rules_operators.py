"""Leaf operators: truth tables, unknown inputs, and the registry's refusal of duplicates."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import TypeAdapter

from rules.compile import compile_condition
from rules.operators import OPERATORS, Operator, OperatorRegistry, Predicate
from rules.spec import Condition

NAN = math.nan
_CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)


def compiled(node: dict[str, Any]) -> Predicate:
    return compile_condition(_CONDITION.validate_python(node))


@pytest.mark.parametrize(
    ("operator", "threshold", "value", "expected"),
    [
        ("gte", 8, 8.0, True),
        ("gte", 8, 7.99, False),
        ("gt", 8, 8.0, False),
        ("gt", 8, 8.01, True),
        ("lte", 0.5, 0.5, True),
        ("lte", 0.5, 0.51, False),
        ("lt", 30, 29.9, True),
        ("lt", 30, 30.0, False),
        ("eq", 1, 1.0, True),
        ("eq", 1, 0.0, False),
        ("between", [0.8, 1.5], 0.8, True),
        ("between", [0.8, 1.5], 1.5, True),
        ("between", [0.8, 1.5], 0.79, False),
        ("between", [0.8, 1.5], 1.51, False),
        ("between", [3, 3], 3.0, True),
        ("in_list", [0, 1, 2, 3], 2.0, True),
        ("in_list", [0, 1, 2, 3], 4.0, False),
        ("in_list", [0.5], 0.5, True),
    ],
)
def test_comparison_operators(operator: str, threshold: Any, value: float, expected: bool) -> None:
    predicate = compiled({"feature": "amount_minor", operator: threshold})
    assert predicate({"amount_minor": value}) is expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (300.0, 100.0, True),  # 3.0 >= 2
        (200.0, 100.0, True),  # exactly 2
        (199.0, 100.0, False),
        (300.0, 0.0, False),  # no ratio without a denominator
        (300.0, NAN, False),
        (NAN, 100.0, False),
    ],
)
def test_ratio_gte(numerator: float, denominator: float, expected: bool) -> None:
    predicate = compiled(
        {
            "feature": "src_out_amount_24h_minor",
            "ratio_gte": {"of": "src_in_amount_24h_minor", "value": 2},
        }
    )
    features = {"src_out_amount_24h_minor": numerator, "src_in_amount_24h_minor": denominator}
    assert predicate(features) is expected


UNKNOWN_LEAVES: list[dict[str, Any]] = [
    {"feature": "amount_minor", "gte": 0},
    {"feature": "amount_minor", "gt": -1},
    {"feature": "amount_minor", "lte": 1e12},
    {"feature": "amount_minor", "lt": 1e12},
    {"feature": "amount_minor", "eq": 0},
    {"feature": "amount_minor", "between": [-1e12, 1e12]},
    {"feature": "amount_minor", "in_list": [0, 1]},
    {"feature": "amount_minor", "ratio_gte": {"of": "hour_of_day", "value": 0}},
]


@pytest.mark.parametrize(
    "leaf", UNKNOWN_LEAVES, ids=lambda leaf: next(iter(set(leaf) - {"feature"}))
)
@pytest.mark.parametrize("features", [{"amount_minor": NAN, "hour_of_day": 1.0}, {}])
def test_unknown_feature_is_no_match(leaf: dict[str, Any], features: dict[str, float]) -> None:
    assert compiled(leaf)(features) is False


def test_every_operator_has_an_unknown_case() -> None:
    covered = {key for leaf in UNKNOWN_LEAVES for key in leaf} - {"feature"}
    assert covered == set(OPERATORS.names())


def test_boolean_nodes() -> None:
    high = {"feature": "amount_minor", "gte": 100}
    night = {"feature": "hour_of_day", "lt": 6}
    both = compiled({"all": [high, night]})
    either = compiled({"any": [high, night]})
    neither = compiled({"not": {"any": [high, night]}})
    assert both({"amount_minor": 100.0, "hour_of_day": 2.0})
    assert not both({"amount_minor": 100.0, "hour_of_day": 12.0})
    assert either({"amount_minor": 1.0, "hour_of_day": 2.0})
    assert not either({"amount_minor": 1.0, "hour_of_day": 12.0})
    assert neither({"amount_minor": 1.0, "hour_of_day": 12.0})


def test_not_of_unknown_leaf_holds() -> None:
    # Documented semantics: a guard `not: {is_business eq 1}` lets an unprofiled account through.
    guard = compiled({"not": {"feature": "src_is_business", "eq": 1}})
    assert guard({"src_is_business": NAN})
    assert guard({"src_is_business": 0.0})
    assert not guard({"src_is_business": 1.0})


def test_registry_refuses_duplicates() -> None:
    registry = OperatorRegistry()
    gte = OPERATORS["gte"]
    registry.register(gte)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Operator("gte", float, gte.compile))
    assert registry.names() == ("gte",)
    assert "gte" in registry and "gt" not in registry


def test_default_registry_cannot_be_extended_with_a_taken_name() -> None:
    with pytest.raises(ValueError, match="'between' is already registered"):
        OPERATORS.register(OPERATORS["between"])
