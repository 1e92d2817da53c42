"""Answer extraction as the released scorers do it (MTGRPO_SPEC.md §5, docs/parity.md).

The answer is on the response's last line: the text after its last ``\\n``, so a response that ends in a
newline has an empty last line and no answer (``\\r`` and other whitespace are ordinary characters). On that
line only the *last* ``\\boxed`` counts: it must be followed at once by ``{``, and the braces from there on
must balance; the answer is what they enclose. Otherwise there is no answer: no ``\\boxed``, a last
``\\boxed`` not followed by ``{`` (``\\boxed 5``, ``\\boxed{1} \\boxed``), braces that never balance, or only
``\\fbox{...}`` (the released code finds it but then rejects it).

Variant (off by default): ``ignore_trailing_whitespace=True`` reads the last non-blank line instead.

Bounded on hostile text: only the final :data:`WINDOW_CHARS` characters are read (1 MiB, far beyond a
4096-token response), the search is ``str.rfind``/``str.find``/``str.count``, and a box with more than
:data:`FEW_BRACES` closing braces is matched with one vectorised pass.
"""

from __future__ import annotations

import numpy as np

BOXED = "\\boxed"
WINDOW_CHARS = 1 << 20
FEW_BRACES = 64


def last_line(response: str, ignore_trailing_whitespace: bool = False) -> str:
    """The text after the last newline (within the final WINDOW_CHARS characters)."""
    text = response[-WINDOW_CHARS:]
    if ignore_trailing_whitespace:
        text = text.rstrip()
    return text[text.rfind("\n") + 1 :]


def closing_brace(text: str, start: int) -> int | None:
    """Index of the ``}`` that closes the ``{`` at ``start - 1``, or None when the braces never balance."""
    depth, position = 1, start
    for _ in range(FEW_BRACES):
        close = text.find("}", position)
        if close < 0:
            return None
        depth += text.count("{", position, close) - 1
        if depth == 0:
            return close
        position = close + 1
    codes = np.frombuffer(text[position:].encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    change = np.cumsum((codes == ord("{")).astype(np.int64) - (codes == ord("}")))
    closing = np.flatnonzero(change == -depth)
    return position + int(closing[0]) if len(closing) else None


def last_boxed_answer(response: str, ignore_trailing_whitespace: bool = False) -> str | None:
    """Content of the last ``\\boxed{…}`` on the last line, or None when there is none (see module doc)."""
    if not isinstance(response, str):
        return None
    line = last_line(response, ignore_trailing_whitespace)
    start = line.rfind(BOXED) + len(BOXED)
    if start < len(BOXED) or not line.startswith("{", start):
        return None
    close = closing_brace(line, start + 1)
    return None if close is None else line[start + 1 : close]
