"""Which batch failures the worker retries as they are and which it isolates."""

from __future__ import annotations

import pytest
import redis
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
    UnknownError,
)

from streams.failures import Failure, classify, describe, refuses_writes


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Connection refused"),
        redis.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.NoScriptError("No matching script"),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ResponseError("MASTERDOWN Link with MASTER is down"),
        redis.exceptions.ResponseError("CLUSTERDOWN The cluster is down"),
        redis.exceptions.ResponseError("TRYAGAIN Multiple keys request during rehashing"),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script"),
        redis.exceptions.ResponseError(
            "MISCONF Errors writing to the AOF file: No space left on device"
        ),
        redis.exceptions.ResponseError("Function not found"),
        redis.exceptions.MovedError("2 127.0.0.1:7001"),
        redis.exceptions.AskError("2 127.0.0.1:7001"),
        redis.exceptions.ResponseError(
            "ERR Script attempted to access keys that are not served by this node"
        ),
        KafkaTimeoutError("Batch expired"),
        KafkaConnectionError("broker unreachable"),
        NotLeaderForPartitionError(),
        UnknownError(),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:12],
)
def test_failures_of_the_services_are_transient(error: Exception) -> None:
    assert classify(error) is Failure.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ResponseError(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        ),
        redis.exceptions.ResponseError("ERR user_script:12: attempt to compare nil with number"),
        redis.exceptions.DataError("Invalid input of type: 'dict'"),
        MessageSizeTooLargeError("The message is 1400000 bytes when serialized"),
        TopicAuthorizationFailedError(),
        ValueError("a bug met by one record"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_failures_no_retry_can_mend_are_permanent(error: Exception) -> None:
    assert classify(error) is Failure.PERMANENT


def test_a_description_names_the_error_and_is_bounded() -> None:
    text = describe(redis.exceptions.ResponseError("WRONGTYPE " + "x" * 1000))
    assert text.startswith("ResponseError: WRONGTYPE")
    assert len(text) == 300


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (
            redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
            True,
        ),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), True),
        (redis.exceptions.ResponseError("MISCONF Errors writing to the AOF file"), True),
        (redis.exceptions.ResponseError("BUSY Redis is busy running a script"), False),
        (redis.ConnectionError("Connection refused"), False),
    ],
    ids=lambda e: str(e)[:12],
)
def test_a_redis_refusing_writes_is_told_from_one_that_is_down(
    error: Exception, refused: bool
) -> None:
    assert refuses_writes(error) is refused
