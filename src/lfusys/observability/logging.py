"""structlog set-up: JSON lines in production, readable lines in a terminal.

Standard-library loggers (uvicorn, litestar, asyncio) go through the same renderer, so every line of
the process has one format.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import Processor

from lfusys.observability.tracing import trace_ids
from lfusys.settings import Settings


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, even if it was replaced later."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def wants_json(settings: Settings) -> bool:
    if settings.core.log_format == "auto":
        return not sys.stderr.isatty()
    return settings.core.log_format == "json"


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.core.log_level.upper())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        trace_ids,
    ]
    renderer: Processor
    # Frame locals can hold passwords and tokens: tracebacks are logged without them, in either format.
    if wants_json(settings):
        shared.append(
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Not cached, so reconfiguring (tests, CLI) takes effect for module-level loggers too.
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "litestar"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Our own access line replaces uvicorn's.
    logging.getLogger("uvicorn.access").disabled = True
