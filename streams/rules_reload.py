"""Reloading the rule library in a running worker, between batches only.

`POST /v1/rules/reload` validates the library and bumps a generation counter in Redis;
SIGHUP asks one worker directly. Each worker reads the counter at most every
`check_interval_s` (one GET) from its loop, reloads its own rules directory when asked, and
swaps the scorer's rule set before the next batch, so no event is half-scored by two
libraries. A library that does not load is logged and the running rules stay in force.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from models.scorer import Scorer
from rules import RuleLibraryError, RuleSet
from streams import metrics
from streams.state.pipelines import AnyRedis

GENERATION_KEY = "fw:rules:generation"
log = logging.getLogger("fraudwatch.rules")


def bump_generation(client: AnyRedis) -> int:
    """Tell every worker to reload its rules; returns the new generation."""
    return int(client.incr(GENERATION_KEY))


def current_generation(client: AnyRedis) -> int:
    """The generation workers should be at (0 before any reload)."""
    return int(client.get(GENERATION_KEY) or 0)


def publish_rules(rules: RuleSet, replaced: RuleSet | None = None) -> None:
    """Expose the library in force as a metric (and a log line); `replaced` drops to 0."""
    metrics.RULES_LOADED.set(len(rules))
    if replaced is not None:
        metrics.RULES_INFO.labels(replaced.fingerprint).set(0)
    metrics.RULES_INFO.labels(rules.fingerprint).set(1)
    log.info(
        "rules in force",
        extra={"event": "rules_in_force", "fingerprint": rules.fingerprint, "rules": len(rules)},
    )


class RuleReloader:
    """Swaps a scorer's rules when asked by SIGHUP or the Redis generation counter."""

    def __init__(
        self,
        client: AnyRedis,
        scorer: Scorer,
        load: Callable[[], RuleSet],
        check_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self.scorer = scorer
        self._load = load
        self._interval_s = check_interval_s
        self._clock = clock
        self._requested = False
        self._generation = current_generation(client)
        self._checked_at = clock()
        publish_rules(scorer.rules)

    def request(self) -> None:
        """Ask for a reload before the next batch (safe to call from a signal handler)."""
        self._requested = True

    def between_batches(self) -> None:
        """Reload now if SIGHUP asked, or if the generation moved (read at most once per
        interval). Errors reading Redis are left to the next check."""
        now = self._clock()
        if not self._requested and now - self._checked_at < self._interval_s:
            return
        self._checked_at = now
        try:
            generation = current_generation(self._redis)
        except redis.RedisError:
            generation = self._generation
        if self._requested or generation != self._generation:
            self._requested = False
            self._generation = generation
            self._reload()

    def _reload(self) -> None:
        try:
            rules = self._load()
        except RuleLibraryError as error:
            log.error(
                "rule reload rejected; the running rules stay in force",
                extra={
                    "event": "rules_reload_rejected",
                    "fingerprint": self.scorer.rules.fingerprint,
                    "problems": [str(problem) for problem in error.problems],
                },
            )
            return
        replaced, self.scorer.rules = self.scorer.rules, rules
        publish_rules(rules, replaced)
