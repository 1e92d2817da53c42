"""Answer extraction (MTGRPO_SPEC.md §5): the last line of the response, the last ``\\boxed{…}`` on it.

Built from ``str.rfind``/``str.find``/``str.count`` only, so one call costs microseconds even on
megabytes of hostile text. As in verl's ``last_boxed_only_string``, only the *last* ``\\boxed{`` on the
line counts: if its braces never balance, there is no answer. Trailing blank lines are ignored; lines end
at ``\\n`` (a trailing ``\\r`` is stripped with the other whitespace). Only the final
:data:`WINDOW_CHARS` characters of a response are read (1 MiB: far beyond any generation length), which
keeps every call under a few milliseconds whatever the length.
"""

from __future__ import annotations

BOXED = "\\boxed{"
#: More braces than this inside one answer is not an answer to any of our tasks (and bounds the work).
MAX_INNER_BRACES = 32
WINDOW_CHARS = 1 << 20


def last_line(response: str) -> str:
    """The last non-blank line within the final WINDOW_CHARS characters."""
    text = response[-WINDOW_CHARS:].rstrip()
    return text[text.rfind("\n") + 1 :]


def last_boxed_answer(response: str) -> str | None:
    """Content of the last ``\\boxed{…}`` on the last non-blank line, or None when there is none."""
    if not isinstance(response, str):
        return None
    line = last_line(response)
    start = line.rfind(BOXED)
    if start < 0:
        return None
    content_start = start + len(BOXED)
    position, open_braces, inner_braces = content_start, 1, 0
    while True:
        close = line.find("}", position)
        if close < 0:
            return None
        opened = line.count("{", position, close)
        inner_braces += opened
        if inner_braces > MAX_INNER_BRACES:
            return None
        open_braces += opened - 1
        if open_braces == 0:
            return line[content_start:close]
        position = close + 1
