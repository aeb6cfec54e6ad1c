"""Logging: the `amqp-dispatcher` logger tree, LOGGING_FILE_CONFIG, and a sensible default.

Owns how the service's logging is set up, in an order that respects the user: a
LOGGING_FILE_CONFIG file first, then the startup handler (which may configure logging itself),
and only if nothing has configured a handler by then, a plain default to stderr.
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import ConfigurationError

ROOT = "amqp-dispatcher"
FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class PrefixedLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose every line starts by naming what it is about, such as a consumer entry."""

    def __init__(self, name: str, prefix: str) -> None:
        super().__init__(logging.getLogger(name), {})
        self.prefix = prefix

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return f"{self.prefix}: {msg}", kwargs


def configure_from_file(environ: Mapping[str, str]) -> None:
    """Apply LOGGING_FILE_CONFIG, a logging.config.fileConfig file, when it is set."""
    path = environ.get("LOGGING_FILE_CONFIG", "").strip()
    if not path:
        return
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ConfigurationError(f"LOGGING_FILE_CONFIG={path}: cannot configure logging from it: {exc!r}") from exc


def quiet_pika() -> None:
    """Silence pika, whose every failure our own log lines already report with more context.

    pika narrates connections and channels at INFO and repeats each broker refusal as a warning
    or error; one clear line per event is ours to write. Only where nothing set pika's level
    already, so that a logging file or the startup handler can turn it back on.
    """
    pika = logging.getLogger("pika")
    if pika.level == logging.NOTSET:
        pika.setLevel(logging.CRITICAL)


def ensure_configured() -> None:
    """A default configuration, unless a file or the startup handler has set one up."""
    if logging.getLogger().handlers or logging.getLogger(ROOT).handlers:
        return
    logging.basicConfig(level=logging.INFO, format=FORMAT)
