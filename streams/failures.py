"""Which failures of a batch are worth retrying and which are a record's own fault.

A transient failure is the world's (Redis down or restarting, a broker election, a full
memory, a replica promoted): the same batch will go through once it passes, so the worker
retries it for as long as it takes. A permanent failure is one that no retry can mend (a reply
Redis will always refuse for this input, a record the broker will never take, a bug met by one
record): the worker must find the record at fault and set it aside, or the partition stops.
"""

from __future__ import annotations

import enum

import redis
from kafka.errors import KafkaError, UnknownError

from streams.state.spec import CHAIN_REFUSED
from streams.state.transport import first_word

# Error replies of a Redis that takes no writes for now: its memory is full, it is a
# read-only replica, or it cannot persist them (a full disk under its AOF or RDB, MISCONF).
_WRITE_REFUSALS = ("OOM", "READONLY", "MISCONF")

# Redis error replies that describe the server's state, not the command's input.
_TRANSIENT_REPLIES = (
    *_WRITE_REFUSALS,
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MOVED",
    "ASK",
    "NOREPLICAS",
    "NOPERM",
    "NOSCRIPT",
    # A state call refused because the one before it in its batch was (spec.chain_link).
    CHAIN_REFUSED,
)

_TRANSIENT_REDIS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.NoScriptError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.NoPermissionError,
    redis.exceptions.ClusterError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
)


class Failure(enum.Enum):
    """How the worker treats a failed step of a batch."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"


# Error replies whose text, not their first word, says the server is in flux: it lost its
# functions (a restart without persistence, a flush, a new cluster node), or a slot moved
# under a function that was running.
_TRANSIENT_TEXT = ("Function not found", "not served by this node", "non local key")


def refuses_writes(error: BaseException) -> bool:
    """Whether Redis answered that it takes no writes for now (memory or disk full, a
    read-only replica): the server's state, which passes, not the command's fault."""
    if isinstance(error, redis.exceptions.OutOfMemoryError | redis.exceptions.ReadOnlyError):
        return True
    return isinstance(error, redis.ResponseError) and first_word(error) in _WRITE_REFUSALS


def classify(error: BaseException) -> Failure:
    """Transient for failures of the services a batch uses, permanent for everything else."""
    if isinstance(error, _TRANSIENT_REDIS):
        return Failure.TRANSIENT
    if isinstance(error, redis.ResponseError):
        text = str(error)
        if first_word(error) in _TRANSIENT_REPLIES or any(t in text for t in _TRANSIENT_TEXT):
            return Failure.TRANSIENT
        return Failure.PERMANENT
    if isinstance(error, redis.RedisError):
        # Client-side errors (a value redis-py cannot encode, a reply it cannot parse).
        return Failure.PERMANENT
    if isinstance(error, UnknownError):
        # The broker's "unexpected server error" (kafka-python calls it not retriable): a
        # broker that has just restarted answers it for a topic it is creating again.
        return Failure.TRANSIENT
    if isinstance(error, KafkaError):
        return Failure.TRANSIENT if error.retriable else Failure.PERMANENT
    return Failure.PERMANENT


def describe(error: BaseException, limit: int = 300) -> str:
    """`Type: message`, cut to `limit` characters, for logs and dead-letter reasons (Redis's
    script errors name the script and line, never the arguments)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
