"""Request dependencies as `Annotated` aliases: settings, Redis, stores, the caller.

All are coroutines: FastAPI runs a plain function dependency on a worker thread, and that hop
cost more than the work (a screening request has five of them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import redis
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.audit import AuditLog, Disclosure
from service.auth import Authenticator, Caller, Rejected, Role
from service.errors import Forbidden, RateLimited, Unauthorized
from service.keys_store import KeyStore
from service.settings import Settings
from streams.state.alert_store import AlertStore
from streams.state.reads import StateReads


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


async def _state_reads(request: Request) -> StateReads:
    reads: StateReads = request.app.state.reads
    return reads


async def _alert_store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.alert_store
    return store


async def _key_store(request: Request) -> KeyStore:
    store: KeyStore = request.app.state.key_store
    return store


async def _audit_log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.audit_log
    return log


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
StateDep = Annotated[StateReads, Depends(_state_reads)]
AlertStoreDep = Annotated[AlertStore, Depends(_alert_store)]
KeyStoreDep = Annotated[KeyStore, Depends(_key_store)]
AuditLogDep = Annotated[AuditLog, Depends(_audit_log)]


# Declares the scheme in /openapi.json (the docs' "Authorize", clients generated from it); the
# errors stay ours, so it never refuses by itself.
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="api_key",
    description="An API key (`fraudwatch keys create`, or `POST /v1/keys`), sent as "
    "`Authorization: Bearer <key>`",
)


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> Caller:
    if credentials is None or not credentials.credentials.strip():
        if "authorization" not in request.headers:
            raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <key>'")
        raise Unauthorized("Authorization must be 'Bearer <key>'")
    authenticator: Authenticator = request.app.state.authenticator
    try:
        caller = await authenticator.authenticate(credentials.credentials.strip())
    except Rejected as rejected:
        if rejected.retry_after_s is None:
            raise Unauthorized("unknown or revoked API key") from None
        raise RateLimited(
            f"this key's request budget is spent; retry in {rejected.retry_after_s} s",
            headers={"Retry-After": str(rejected.retry_after_s)},
        ) from None
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def require(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits `admin` and the given roles, 403 for anyone else."""

    async def check(caller: CallerDep) -> Caller:
        if caller.role != "admin" and caller.role not in roles:
            allowed = ", ".join(("admin", *roles))
            raise Forbidden(f"role '{caller.role}' may not use this route (allowed: {allowed})")
        return caller

    return check


async def _disclosure(request: Request, caller: CallerDep, log: AuditLogDep) -> Disclosure:
    return Disclosure(caller, log, request.method, request.url.path)


# How a route that returns personal data shows it (masked or in clear) and audits the access.
DisclosureDep = Annotated[Disclosure, Depends(_disclosure)]
