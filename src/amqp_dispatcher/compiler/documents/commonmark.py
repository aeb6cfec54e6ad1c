"""Names inside the AsyncAPI document's descriptions, which readers render as CommonMark.

Owns the code span: a name shown exactly as it is, whatever characters it holds (backticks,
brackets, `<`, `*`), so that no name becomes a link, markup or HTML. Knows nothing else of
the document.
"""

from __future__ import annotations


def code(text: str) -> str:
    """`text` as a CommonMark code span; the empty name as `""`."""
    if not text:
        return '`""`'
    fence = "`" * (_longest_backtick_run(text) + 1)
    # CommonMark strips one space from each end of a span that has one at both: pad to keep them.
    pad = " " if text.strip(" ") and (text[0] in "` " or text[-1] in "` ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest
