"""Request dependencies as `Annotated` aliases: settings, Redis, stores, the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import redis
from fastapi import Depends, Request

from service.auth import Caller, ConfiguredKeys, Role
from service.errors import Forbidden, Unauthorized
from service.settings import Settings
from streams.state.alert_store import AlertStore


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


def _alert_store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.alert_store
    return store


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
AlertStoreDep = Annotated[AlertStore, Depends(_alert_store)]


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Authorization must be 'Bearer <key>'")
    keys: ConfiguredKeys = request.app.state.keys
    caller = keys.lookup(key.strip())
    if caller is None:
        raise Unauthorized("unknown or revoked API key")
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def require(*roles: Role) -> Callable[[Caller], Caller]:
    """A dependency that admits `admin` and the given roles, 403 for anyone else."""

    def check(caller: CallerDep) -> Caller:
        if caller.role != "admin" and caller.role not in roles:
            allowed = ", ".join(("admin", *roles))
            raise Forbidden(f"role '{caller.role}' may not use this route (allowed: {allowed})")
        return caller

    return check
