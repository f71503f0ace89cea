"""Whether a worker is making progress: the stall gauge, the consumer-group join watch and
the broker watch.

A worker can stop scoring without dying: retrying a batch Redis keeps refusing, waiting in a
consumer-group join that never completes, or cut off from the broker. None shows in its log as
an error, so it is measured here: `fraudwatch_worker_stalled_seconds` counts from the last
commit while there is work (messages waiting, no settled group membership, or a broker out of
reach, when whether messages wait is unknown); a join that outlasts the rebalance timeout is
logged and counted once per join, and a lost broker is logged once when it goes and once when
it comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from streams import metrics

log = logging.getLogger("fraudwatch.worker")


class Liveness:
    """Progress of one worker, fed by its loop."""

    def __init__(self, join_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._join_timeout_s = join_timeout_s
        self._clock = clock
        now = clock()
        self._progress_at = now
        self._joining_since: float | None = now
        self._join_reported = False
        self._broker_lost_at: float | None = None

    def committed(self) -> None:
        """A batch was committed: progress."""
        self._progress_at = self._clock()
        self.report()

    def observe(self, settled: bool, lag: int, broker_reachable: bool = True) -> None:
        """After a poll: whether the worker is a settled member of its group, how many
        messages wait on its partitions, and whether its group's broker answers (if not, the
        lag is only the last one the broker told and work is presumed)."""
        now = self._clock()
        self._watch_join(settled, now)
        self._watch_broker(broker_reachable, now)
        if settled and lag == 0 and broker_reachable:
            self._progress_at = now
        self.report()

    def report(self) -> None:
        """Publish the stall gauge (also while a batch is being retried) and the heartbeat."""
        metrics.WORKER_STALLED_SECONDS.set(round(self._clock() - self._progress_at, 1))
        metrics.WORKER_HEARTBEAT.set(time.time())

    def _watch_join(self, settled: bool, now: float) -> None:
        if settled:
            if self._joining_since is not None and self._join_reported:
                log.warning(
                    "consumer group join completed late",
                    extra={"event": "group_join_late",
                           "seconds": round(now - self._joining_since, 1)},
                )  # fmt: skip
            self._joining_since, self._join_reported = None, False
            return
        if self._joining_since is None:
            self._joining_since = now
        waited = now - self._joining_since
        if not self._join_reported and waited > self._join_timeout_s:
            self._join_reported = True
            metrics.GROUP_JOIN_STALLS.inc()
            log.error(
                "consumer group join has not completed within the rebalance timeout; "
                "no partition is being scored by this worker",
                extra={"event": "group_join_stalled", "seconds": round(waited, 1)},
            )

    def _watch_broker(self, reachable: bool, now: float) -> None:
        if reachable:
            if self._broker_lost_at is not None:
                log.warning(
                    "broker reachable again; scoring resumes",
                    extra={"event": "broker_reachable",
                           "seconds": round(now - self._broker_lost_at, 1)},
                )  # fmt: skip
            self._broker_lost_at = None
        elif self._broker_lost_at is None:
            self._broker_lost_at = now
            log.error(
                "broker unreachable: no partition is being read or committed by this worker "
                "until it answers again",
                extra={"event": "broker_unreachable"},
            )
