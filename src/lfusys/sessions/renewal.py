"""Keeping a claim alive while long work runs: a finalize lease, a queue message's visibility."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def kept_renewed(
    renew: Callable[[], Awaitable[bool]], every: float, what: str, **context: str
) -> AsyncIterator[None]:
    """Call ``renew`` every ``every`` seconds while the block runs.

    A renewal that fails is logged and tried again at the next tick; one that answers ``False``
    (the claim is someone else's now) stops the renewals.
    """

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await renew()
            except Exception:
                log.exception(f"{what} renewal failed", **context)
                continue
            if not renewed:
                log.warning(f"{what} could not be renewed", **context)
                return

    renewal = asyncio.create_task(keep())
    try:
        yield
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
