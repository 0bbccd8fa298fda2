"""The access line's cost per line, in process: `python -m bench.logcost [N]`.

Configures logging as `haven serve` does (haven.logging.configure_logging, JSON lines) with
stderr sent to /dev/null, binds a request id as the edge does, and times N access lines
(the edge's exact call). For comparison, the same lines through structlog's stock
processors (TimeStamper(fmt="iso") and JSONRenderer() on the stdlib's json.dumps), which
Haven used before; and the cost at LOG_LEVEL=warning, where the edge does not build the
line at all. Rounds alternate between the setups (a shared machine drifts); each figure is
the best round, in microseconds per line.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import structlog

from haven.config import load_settings
from haven.logging import configure_logging

ROUNDS = 7


def _logger(stock: bool, out: TextIO) -> Any:
    """An access logger with Haven's configured processors, or with structlog's stock
    timestamp and JSON renderer in their place."""
    configure_logging(load_settings({"LOG_LEVEL": "info", "LOG_FORMAT": "json"}))
    config = structlog.get_config()
    processors = list(config["processors"])
    if stock:
        processors[2] = structlog.processors.TimeStamper(fmt="iso", utc=True)
        processors[-1] = structlog.processors.JSONRenderer()
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=processors,
        wrapper_class=config["wrapper_class"],
        context_class=dict,
    )


def _lines(log: Any, n: int) -> float:
    bound = structlog.contextvars.bind_contextvars(request_id="0123456789abcdef" * 2)
    started = time.perf_counter()
    for _ in range(n):
        log.info(
            "request",
            request_id="0123456789abcdef" * 2,
            method="GET",
            path="/api/v1/dashboard",
            status=200,
            duration_ms=round(0.123456, 2),
        )
    elapsed = time.perf_counter() - started
    structlog.contextvars.reset_contextvars(**bound)
    return elapsed / n * 1e6


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with open(os.devnull, "w") as devnull:
        loggers = {"haven": _logger(False, devnull), "stock": _logger(True, devnull)}
        best = {name: float("inf") for name in loggers}
        for _ in range(ROUNDS):
            for name, log in loggers.items():
                best[name] = min(best[name], _lines(log, n))
    print(f"access line at info, Haven's JSON logging:        {best['haven']:.1f} us per line")
    print(f"the same line, structlog's stock JSON processors: {best['stock']:.1f} us per line")
    print("at warning: the edge builds no line (one attribute test per request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
