"""structlog setup: JSON lines in production, key=value in development.

Every line carries instance_id; lines written while serving a request also
carry request_id (bound in the request middleware via contextvars).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec
import structlog

from haven.config import Settings

# JSON lines through msgspec (compact, UTF-8): the stdlib's json.dumps was most of an access
# line's cost (bench/RESULTS-lean.md). Anything msgspec cannot encode is logged as its repr,
# as structlog's own fallback does.
_json = msgspec.json.Encoder(enc_hook=repr)


def _dumps(event: object, **_: object) -> str:
    return _json.encode(event).decode()


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _timestamp,
    ]
    structlog.configure(
        processors=[
            *shared,
            _add_instance(settings.instance_id),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(message)s")


def _add_instance(instance_id: str) -> structlog.typing.Processor:
    def processor(
        _: object, __: str, event: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event.setdefault("instance_id", instance_id)
        return event

    return processor


_second: list[Any] = [-1, ""]  # the last whole second seen and its ISO text


def _timestamp(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """`timestamp` in UTC ISO 8601 with microseconds ("2026-11-27T21:30:24.191346Z", as
    TimeStamper(fmt="iso", utc=True) writes it), its date and time formatted once a second."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    event["timestamp"] = f"{_second[1]}.{int((now - second) * 1_000_000):06d}Z"
    return event
