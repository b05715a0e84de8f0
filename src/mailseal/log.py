"""Logging: one line per message, as text or JSON lines, to stderr or syslog."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from typing import Any

MESSAGE_LOGGER = "mailseal.message"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.msg = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
            record.args = ()
        return super().format(record)


def _text(value: object) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or '"' in text or not text) else text


def setup_logging(fmt: str = "text", target: str = "stderr", level: str = "info") -> None:
    root = logging.getLogger("mailseal")
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if target == "syslog" and os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler("/dev/log", facility="mail")
        prefix = "mailseal[%(process)d]: "
    else:
        handler = logging.StreamHandler(sys.stderr)
        prefix = "%(asctime)s mailseal[%(process)d] %(levelname)s: "
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter(prefix + "%(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def log_message(fields: dict[str, Any], level: int = logging.INFO) -> None:
    """The one line per message (queue id, role, result, action, time, why)."""
    logging.getLogger(MESSAGE_LOGGER).log(level, "message", extra={"fields": fields})
