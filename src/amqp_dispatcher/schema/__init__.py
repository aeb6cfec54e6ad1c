"""The JSON Schema of config.yml, shipped as package data.

`amqp-dispatcher.schema.json` is the one description of the configuration: the compiler
validates against it and editors complete and explain the YAML with it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_FILE = "amqp-dispatcher.schema.json"


def schema_text() -> str:
    return resources.files(__name__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema
