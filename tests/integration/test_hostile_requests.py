"""Hostile requests against the real API server (uvicorn, as deployed) on a real Redis:
oversized, truncated and malformed bodies, hostile headers, huge query strings and paths.
Each is answered 4xx within 5 s, never 5xx.

`FRAUDWATCH_FUZZ_HOSTILE` sets how many are drawn (default 600 in the suite); with `-s` the
test prints the figures. The full run of the README's reliability section:

    FRAUDWATCH_FUZZ_EXAMPLES=200 FRAUDWATCH_FUZZ_HOSTILE=4000 .venv/bin/pytest -s \\
        tests/integration/test_schemathesis.py tests/integration/test_hostile_requests.py
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import redis

from tests.integration.conftest import TEST_API_KEY
from tests.integration.console_browser import api_server
from tests.integration.hostile import Answer, Hostile, hostile_requests, send, truncated
from tests.integration.keyed_api import api_settings, score_ring

COUNT = int(os.environ.get("FRAUDWATCH_FUZZ_HOSTILE", "600"))
ANSWER_WITHIN_S = 5.0
# uvicorn refuses what is not HTTP/1.1 framing before the app sees it, in plain text.
FRAMING_ERROR = b"Invalid HTTP request received."


def _judge(hostile: Hostile, answer: Answer) -> str | None:
    """Why the answer is wrong for this hostile request, or None."""
    if not 400 <= answer.status < 500:
        line = hostile.raw.split(b"\r\n", 1)[0][:200]
        return f"{hostile.kind} ({line!r}): status {answer.status} {answer.body[:200]!r}"
    if answer.seconds >= ANSWER_WITHIN_S:
        return f"{hostile.kind}: answered after {answer.seconds:.1f} s"
    if answer.body != FRAMING_ERROR and not answer.content_type.startswith("application/json"):
        return f"{hostile.kind}: {answer.status} without a JSON body ({answer.content_type!r})"
    return None


def test_hostile_requests_are_answered_4xx_within_5_s(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    settings = api_settings(services, tmp_path, rate_limit_per_minute=0)
    score_ring(settings, redis_client)
    with api_server(settings) as base, ThreadPoolExecutor(8) as pool:
        port = int(base.rsplit(":", 1)[1])
        stalled = list(truncated(TEST_API_KEY))
        # The truncated ones wait out the body timeout together, while the rest run.
        waiting = [(h, pool.submit(send, port, h)) for h in stalled]
        answers = [(h, send(port, h)) for h in hostile_requests(TEST_API_KEY, COUNT)]
        answers += [(h, future.result()) for h, future in waiting]
        statuses = Counter(answer.status for _, answer in answers)
        by_kind = Counter(hostile.kind for hostile, _ in answers)
        slowest = max(answers, key=lambda pair: pair[1].seconds)
        print(
            f"\nhostile requests: {len(answers)}, 5xx: "
            f"{sum(n for s, n in statuses.items() if s >= 500)}, statuses {dict(statuses)}, "
            f"kinds {dict(by_kind)}, slowest {slowest[1].seconds:.2f} s ({slowest[0].kind}); "
            f"slowest other than a truncated body "
            f"{max(a.seconds for h, a in answers if h.kind != 'truncated body'):.3f} s"
        )
        wrong = [why for h, a in answers if (why := _judge(h, a)) is not None]
        assert not wrong, "\n".join(wrong[:20])
        assert {a.status for h, a in answers if h.kind == "truncated body"} == {408}
        assert len(answers) >= COUNT
