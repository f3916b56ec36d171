"""Structured logs: one JSON object per line on stderr, for every Ratchet daemon."""

import json
import logging
import sys
from typing import Any, ClassVar


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any ``extra``."""

    _STANDARD: ClassVar[frozenset[str]] = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def json_logging(level: int = logging.INFO) -> None:
    """Send every log record to stderr as one JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
