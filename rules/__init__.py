"""The rule engine: declarative YAML rules over named features, evaluated without I/O.

Pure by design: it imports nothing of fraudwatch's but the feature vocabulary.
"""

from rules.engine import Rule, RuleHit, RuleSet
from rules.loader import check_rule_library, load_rule_library
from rules.problems import RuleLibraryError, RuleProblem

__all__ = [
    "Rule",
    "RuleHit",
    "RuleLibraryError",
    "RuleProblem",
    "RuleSet",
    "check_rule_library",
    "load_rule_library",
]
