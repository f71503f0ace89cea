"""API keys and roles. A caller is who a bearer key says it is; routes declare their roles.

Keys come from two places: the bootstrap admin keys of `FRAUDWATCH_API_KEYS` (what
`fraudwatch up` prints), and keys made with `fraudwatch keys create` / `POST /v1/keys`, held
hashed in Redis. A Redis key's record is cached in this process for `key_cache_s` seconds
(default 5), so a revocation takes effect on every replica within that time (at once on the
replica that revoked it) while a request normally costs no lookup round trip.

The one round trip (lookup and rate-limit counters) goes through the asyncio Redis client:
a hung Redis then delays the requests that need it, never the event loop (nor `/healthz`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from streams.failures import refuses_writes
from streams.state.pipelines import AnyAsyncRedis

if TYPE_CHECKING:
    from service.keys_store import KeyStore
    from service.rate_limit import RateLimiter

Role = Literal["admin", "investigator", "analyst", "bank"]
ROLES: tuple[Role, ...] = ("admin", "investigator", "analyst", "bank")
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated client of a request."""

    key_id: str
    name: str
    role: Role


def key_digest(key: str) -> str:
    """How keys are stored and compared: never in clear."""
    return hashlib.sha256(key.encode()).hexdigest()


class ConfiguredKeys:
    """The bootstrap admin keys from `FRAUDWATCH_API_KEYS`, held as digests."""

    def __init__(self, keys: list[str]) -> None:
        self._digests = [key_digest(key) for key in keys]

    def by_digest(self, digest: str) -> Caller | None:
        """The caller for a presented key's digest, or None. Its id carries the start of the
        digest, so the audit tells apart the keys configured over time (`up` makes one per
        start), not only their places in the list."""
        for known in self._digests:
            if hmac.compare_digest(digest, known):
                return Caller(key_id=f"config-{known[:8]}", name="configured admin", role="admin")
        return None


class Rejected(Exception):
    """Why a key was refused: `unknown` (or revoked), or rate-limited for `retry_after_s`."""

    def __init__(self, retry_after_s: int | None = None) -> None:
        super().__init__("rate limited" if retry_after_s else "unknown or revoked key")
        self.retry_after_s = retry_after_s


class KeyCache:
    """Digest → caller (or None for an unknown key) for `ttl_s` seconds, bounded in size."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, Caller | None]] = {}

    def get(self, digest: str) -> tuple[bool, Caller | None]:
        """(hit, caller): a hit may hold None, meaning known not to be a valid key."""
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def put(self, digest: str, caller: Caller | None) -> None:
        """Remember the lookup's outcome until the TTL passes."""
        if len(self._entries) >= CACHE_MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (self._clock() + self.ttl_s, caller)

    def forget(self, key_id: str) -> None:
        """Drop the entry of a key revoked here, so this replica refuses it at once."""
        for digest, (_, caller) in list(self._entries.items()):
            if caller is not None and caller.key_id == key_id:
                del self._entries[digest]


def _answer(reply: Any) -> Any:
    """A pipeline reply, or the error it carries raised."""
    if isinstance(reply, Exception):
        raise reply
    return reply


def _writes_refused(replies: Sequence[object]) -> bool:
    """Whether Redis refused the rate-limit counters as writes: they cannot count then, and
    refusing every caller would take the read-only API (screening, the alert queue) down
    with them, so the request goes on."""
    return any(isinstance(reply, BaseException) and refuses_writes(reply) for reply in replies)


class Authenticator:
    """Turns a presented key into a caller, counting it against its rate limit, in at most
    one Redis round trip (none when the key is cached and no limit is set)."""

    def __init__(
        self,
        client: AnyAsyncRedis,
        configured: ConfiguredKeys,
        store: KeyStore,
        cache: KeyCache,
        limiter: RateLimiter | None,
    ) -> None:
        self._redis = client
        self._configured = configured
        self._store = store
        self.cache = cache
        self._limiter = limiter

    async def authenticate(self, key: str) -> Caller:
        """The caller, or raises `Rejected` (unknown, revoked, or over its limit)."""
        digest = key_digest(key)
        caller = self._configured.by_digest(digest)
        hit = caller is not None
        if not hit:
            hit, caller = self.cache.get(digest)
        now_s = time.time()
        pipe = self._redis.pipeline(transaction=False)
        if not hit:
            self._store.queue_lookup(pipe, digest)
        if self._limiter is not None:
            self._limiter.queue(pipe, digest[:20], now_s)
        replies = await pipe.execute(raise_on_error=False) if len(pipe) else []
        if not hit:
            caller = self._store.caller_from(_answer(replies.pop(0)))
            self.cache.put(digest, caller)
        if caller is None:
            raise Rejected()
        if self._limiter is not None and not _writes_refused(replies):
            retry = self._limiter.judge([_answer(reply) for reply in replies], now_s)
            if retry is not None:
                raise Rejected(retry)
        return caller
