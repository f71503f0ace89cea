"""Property-based requests from `/openapi.json` against the real app on a real Redis: no
route answers 500, whatever the input, and every answer is one the document describes, in
status, content type and body (schemathesis: `not_a_server_error`, `status_code_conformance`,
`content_type_conformance`, `response_schema_conformance`): a bank's client generated from
the document can read every error this API sends.

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
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from tests.integration.keyed_api import ADMIN, api_settings, score_ring

EXAMPLES = settings(
    max_examples=int(os.environ.get("FRAUDWATCH_FUZZ_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(services, redis_client: redis.Redis, tmp_path) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI document, bound to the app (lifespan running, a ring scored)."""
    config = api_settings(services, tmp_path, rate_limit_per_minute=0)
    score_ring(config, redis_client)
    app = create_app(config)
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def _fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, seen: Counter[tuple[str, int]]
) -> None:
    @EXAMPLES
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=ADMIN, checks=CHECKS)
        seen[mode.value, response.status_code] += 1

    run()


def test_every_answer_is_documented_and_none_is_500(api_schema: schemathesis.BaseSchema) -> None:
    failures = []
    seen: Counter[tuple[str, int]] = Counter()
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
        f"5xx: {sum(n for (_, status), n in seen.items() if status >= 500)}, "
        f"statuses by mode {dict(seen)}"
    )
    assert not failures, "\n\n".join(failures)
    # The key worked: valid requests were answered, invalid ones refused for what they are.
    assert seen["positive", 200] > 20 and seen["negative", 422] > 20, seen
    assert ("positive", 401) not in seen, seen
