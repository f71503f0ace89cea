"""The screening policy: outcomes by score band, sooner for vulnerable customers known by
their profile, block for a listed payee, the customer's warning by what the transfer looks
like; a bad policy file names file, line and field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rules import RuleLibraryError
from rules.loader import load_rule_library
from rules.policy import ScreeningPolicy, load_policy
from service.settings import DEFAULT_POLICY_PATH, DEFAULT_RULES_DIR

UNKNOWN_AGE = math.nan


@pytest.fixture(scope="module")
def policy() -> ScreeningPolicy:
    rules = {rule.id for rule in load_rule_library(DEFAULT_RULES_DIR).rules}
    return load_policy(DEFAULT_POLICY_PATH, rules)


@pytest.mark.parametrize(
    ("score", "decision"),
    [(0.0, "allow"), (0.39, "allow"), (0.4, "warn"), (0.65, "hold"), (0.92, "block")],
)
def test_ordinary_bands(policy: ScreeningPolicy, score: float, decision: str) -> None:
    outcome = policy.decide(score, [], payee_listed=False, holder_age_years=40)
    assert outcome.decision == decision
    assert (outcome.warning is None) == (decision == "allow")


def test_an_ordinary_payment_is_allowed_without_a_warning(policy: ScreeningPolicy) -> None:
    outcome = policy.decide(0.01, [], payee_listed=False, holder_age_years=UNKNOWN_AGE)
    assert (outcome.decision, outcome.warning, outcome.vulnerable) == ("allow", None, None)


def test_vulnerable_customers_by_profile_are_warned_and_held_sooner(
    policy: ScreeningPolicy,
) -> None:
    rules = ["vulnerable_customer_new_payee"]
    elderly = policy.decide(0.55, rules, payee_listed=False, holder_age_years=72)
    assert (elderly.decision, elderly.vulnerable) == ("hold", "elderly")
    assert elderly.warning is not None and elderly.warning.code == "pension_investment"
    minor = policy.decide(0.3, rules, payee_listed=False, holder_age_years=15)
    assert (minor.decision, minor.vulnerable) == ("warn", "minor")
    assert minor.warning is not None and minor.warning.code == "game_purchase"
    # No profile is no evidence: the ordinary bands apply.
    unknown = policy.decide(0.55, rules, payee_listed=False, holder_age_years=UNKNOWN_AGE)
    assert (unknown.decision, unknown.vulnerable) == ("warn", None)


def test_a_listed_payee_is_blocked_whatever_the_score(policy: ScreeningPolicy) -> None:
    outcome = policy.decide(0.1, ["watchlist_hit"], payee_listed=True, holder_age_years=30)
    assert outcome.decision == "block"
    assert outcome.warning is not None and outcome.warning.code == "payee_reported"


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        (["fan_in_collection"], "safe_account"),
        (["model", "two_cards_new_account_many_payers"], "safe_account"),
        (["mule_pass_through", "fan_in_collection"], "money_mule"),
        (["two_cards_shared_device"], "lent_card"),
        (["model"], "unusual_payment"),
        # The elderly warning is for elderly customers only; others get the default.
        (["vulnerable_customer_new_payee"], "unusual_payment"),
    ],
)
def test_the_warning_follows_the_strongest_rule_that_has_one(
    policy: ScreeningPolicy, rules: list[str], code: str
) -> None:
    outcome = policy.decide(0.7, rules, payee_listed=False, holder_age_years=40)
    assert outcome.warning is not None and outcome.warning.code == code
    assert len(outcome.warning.text) > 40


def broken(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "marker", "message"),
    [
        ("  hold: 0.65", "  hold: 0.95", "bands", "bands:", "bands must rise"),
        ("  block: 0.92", "  block: high", "bands.block", "block: high", "valid number"),
        ("listed_payee: block", "listed_payee: allow", "listed_payee", "listed_payee",
         "Input should be"),
        ("  age_under: 18", "  age_under: 18\n  age_ober: 90", "vulnerable.age_ober",
         "age_ober", "unknown field 'age_ober'"),
        ("[two_cards_shared_device]", "[two_cards_shared_devise]", "warnings[6].rules[0]",
         "devise",
         "unknown rule 'two_cards_shared_devise' (did you mean 'two_cards_shared_device'?)"),
    ],
)
def test_a_bad_policy_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, marker: str, message: str
) -> None:
    path = broken(tmp_path, old, new)
    rules = {rule.id for rule in load_rule_library(DEFAULT_RULES_DIR).rules}
    with pytest.raises(RuleLibraryError) as raised:
        load_policy(path, rules)
    (problem,) = raised.value.problems
    assert (problem.file, problem.field) == (path, field)
    assert problem.line == line_of(path, marker)
    assert message in problem.message
    assert str(raised.value).startswith("screening policy has 1 problem:")


def _payment(first_time: float, times_usual: float, amount_minor: float) -> dict[str, float]:
    return {"is_first_time_payee": first_time, "amount_to_avg_30d": times_usual,
            "amount_minor": amount_minor}  # fmt: skip


def test_an_outsized_first_payment_is_warned_whatever_the_score(policy: ScreeningPolicy) -> None:
    """A customer who pays 40-180 yuan sending 200,000 to an account never paid: warned with
    its own message, though the model scores it low (large first purchases are ordinary)."""
    outsized = _payment(1, 2000, 20_000_000)
    outcome = policy.decide(0.16, [], payee_listed=False, holder_age_years=40, features=outsized)
    assert outcome.decision == "warn"
    assert outcome.warning is not None and outcome.warning.code == "outsized_payment"
    # A rule's own warning is more specific; a higher band stays.
    ruled = policy.decide(0.7, ["fan_in_collection"], payee_listed=False, holder_age_years=40,
                          features=outsized)  # fmt: skip
    assert ruled.decision == "hold" and ruled.warning is not None
    assert ruled.warning.code == "safe_account"
    for ordinary in (_payment(0, 2000, 20_000_000),  # a payee paid before
                     _payment(1, 5, 20_000_000),  # five times the usual
                     _payment(1, 2000, 4_000_000),  # below 50,000
                     _payment(1, math.nan, 20_000_000),  # no history to compare with
                     _payment(math.nan, 2000, 20_000_000)):  # first week: new is unknown
        plain = policy.decide(0.16, [], payee_listed=False, holder_age_years=40,
                              features=ordinary)  # fmt: skip
        assert plain.decision == "allow", ordinary
