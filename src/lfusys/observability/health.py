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
        """Every dependency answers within a moment; 503 names the one that does not."""
        checks = services_from(state).backend.checks
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT)
            except Exception as exc:
                raise DependencyUnavailable(f"{name} unavailable") from exc
        return {"status": "ok", **dict.fromkeys(checks, "ok")}
