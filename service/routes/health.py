"""Liveness, readiness and Prometheus metrics (unversioned, unauthenticated)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.metrics import render_metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests: answered on the event loop itself,
    never queued behind worker threads that may be waiting on Redis."""
    return {"status": "ok"}


@router.get("/readyz", summary="Redis answers, of this PII key; rules and policy are loaded")
def readyz(request: Request) -> JSONResponse:
    """200 when Redis answers PING, holds no state pseudonymised with another
    `FRAUDWATCH_PII_KEY`, and the rules and the screening policy are loaded, else 503 naming
    what is missing."""
    checks: dict[str, str] = {}
    reads = request.app.state.probe_reads
    try:
        reads.ping()
        checks["redis"] = "ok"
        recorded = reads.pii_key_fingerprint()
    except redis.RedisError as error:
        checks["redis"] = f"unreachable: {type(error).__name__}"
    else:
        checks["pii_key"] = (
            "ok" if recorded in (None, request.app.state.pii_key_fingerprint) else
            "another key: the state was pseudonymised with another FRAUDWATCH_PII_KEY, so this "
            "API's screening and watchlists would miss every phone, IP and device id in it"
        )  # fmt: skip
    rules, policy = request.app.state.rules, request.app.state.policy
    checks["rules"] = f"ok: {len(rules)} rules ({rules.fingerprint})" if rules else "not loaded"
    checks["policy"] = f"ok: screening policy v{policy.version}" if policy else "not loaded"
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Text exposition of this process's metrics (and the workers' in the embedded stack)."""
    body, content_type = render_metrics(request.app.state.probe_redis)
    return Response(body, media_type=content_type)
