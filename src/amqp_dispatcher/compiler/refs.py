"""`module:attr` references: parsing them, and saying what is wrong with a malformed one.

Owns the reference syntax shared by `consumer` and `startup_handler`. Knows nothing of
importing (imports.py does that).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

# Kept equal to the pattern in the JSON Schema; a test checks it.
IMPORT_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True, order=True)
class ImportRef:
    """A validated `module:attr` reference."""

    module: str
    attr: str

    @classmethod
    def parse(cls, text: str) -> ImportRef:
        module, _, attr = text.partition(":")
        return cls(module=module, attr=attr)

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}"

    def keyword_part(self) -> str | None:
        """A part that is a Python keyword, which no import statement can name."""
        for part in (*self.module.split("."), self.attr):
            if keyword.iskeyword(part):
                return part
        return None


def explain_bad_ref(text: str) -> str:
    """One sentence on why `text` is not `module:attr`, with the fix when there is one."""
    if ":" not in text:
        if "." in text:
            module, _, attr = text.rpartition(".")
            return f"no `:` between module and name; write {module}:{attr}"
        return "no module: write module:Name, as in myapp.consumers:OrderConsumer"
    if text.count(":") > 1:
        return "more than one `:`; write module:Name, with dots between module parts"
    module, _, attr = text.partition(":")
    if not module:
        return "the module before `:` is missing"
    if not attr:
        return "the name after `:` is missing"
    if "." in attr:
        return f"the name after `:` must be a single name; nested names such as {attr} are not supported"
    for part in module.split("."):
        if not _IDENTIFIER.fullmatch(part):
            return f"`{part}` is not a valid module name part (letters, digits and _, not starting with a digit)"
    return f"`{attr}` is not a valid Python name (letters, digits and _, not starting with a digit)"
