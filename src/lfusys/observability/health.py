"""Liveness and readiness probes."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import State

from lfusys.errors import DependencyUnavailable, error_responses
from lfusys.services import services_from


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
        """Every dependency answers; 503 names the one that does not."""
        try:
            await services_from(state).metadata.ping()
        except Exception as exc:
            raise DependencyUnavailable("metadata store unavailable") from exc
        return {"status": "ok", "metadata": "ok"}
