"""Structured logs: one JSON object per line with time, level, logger, event and its counts.

Callers pass context through `extra`; nothing on the event path logs transfer contents, so
phone numbers, IPs and device ids never reach a log line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line, keeping the `extra` fields it was given."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Route every logger of this process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO about connections; its warnings still come through.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO: a webhook's URL may carry a token in its
    # query; the delivery log (`/v1/webhooks/{id}/deliveries`) says what was sent.
    logging.getLogger("httpx").setLevel(logging.WARNING)
