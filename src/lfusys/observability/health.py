"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import Controller, get
from litestar.datastructures import State

from lfusys.errors import DependencyUnavailable, error_responses
from lfusys.services import services_from

_CHECK_TIMEOUT = 2.0  # seconds


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    opt = {"exclude_from_auth": True, "exclude_from_csrf": True}

    @get("/live", operation_id="live")
    async def live(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @get("/ready", operation_id="ready", responses=error_responses(503))
    async def ready(self, state: State) -> dict[str, str]:
        """Every dependency answers within a moment; 503 names the one that does not.

        An optional dependency (Redis) that does not answer makes the answer ``degraded``, still 200:
        the service runs without it (rate limits and caches fail open)."""
        services = services_from(state)
        checks = services.backend.checks
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT)
            except Exception as exc:
                raise DependencyUnavailable(f"{name} unavailable") from exc
        optional: dict[str, str] = {}
        for name, check in services.optional_checks.items():
            try:
                await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT)
                optional[name] = "ok"
            except Exception:
                optional[name] = "degraded"
        status = "degraded" if "degraded" in optional.values() else "ok"
        return {"status": status, **dict.fromkeys(checks, "ok"), **optional}
