"""Property-based requests from `/openapi.json` against the real app on a real Redis:
no route answers 500, whatever the input (schemathesis, `not_a_server_error`).

schemathesis' own pytest plugin (`from_fixture`) does not run on pytest 9, so each operation
gets a plain Hypothesis test over its case strategy, valid and invalid inputs alike.

`FRAUDWATCH_FUZZ_EXAMPLES` sets the examples per operation and mode (default 10 in the suite);
with `-s` the test prints how many requests it made and their statuses. The full fuzz run
(with tests/integration/test_hostile_requests.py) is in that module's docstring."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from service.app import create_app
from tests.integration.keyed_api import ADMIN, api_settings, score_ring

EXAMPLES = settings(
    max_examples=int(os.environ.get("FRAUDWATCH_FUZZ_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_schema(services, redis_client: redis.Redis, tmp_path) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI document, bound to the app (lifespan running, a ring scored)."""
    config = api_settings(services, tmp_path, rate_limit_per_minute=0)
    score_ring(config, redis_client)
    app = create_app(config)
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, seen: Counter[int]) -> None:
    @EXAMPLES
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])
        seen[response.status_code] += 1

    run()


def test_no_route_answers_500(api_schema: schemathesis.BaseSchema) -> None:
    failures = []
    seen: Counter[int] = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]  # an Err raises in ok()
    assert len(operations) >= 10
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, seen)
            except Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body)
            except Exception as failure:  # every operation runs; all failures are reported
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    print(
        f"\nschemathesis: {sum(seen.values())} requests over {len(operations)} operations, "
        f"5xx: {sum(n for status, n in seen.items() if status >= 500)}, statuses {dict(seen)}"
    )
    assert not failures, "\n\n".join(failures)
    assert seen[200] > 20 and seen[422] > 20 and 401 not in seen, seen  # the key worked
