"""Control characters made visible before text reaches a terminal.

Names, object keys and messages are data from whoever wrote the filespace or
the bucket: an ESC in an object key must not recolour, move the cursor or
retitle the terminal of the person listing it, a CR must not overwrite the
line it is on, and a newline must not fake another line of output. Human
output shows such characters as Python-style escapes (``\\x1b``, ``\\r``,
``\\u202e``); printable text, any script or emoji, is kept as it is. JSON
output keeps names exact: the same characters are written as JSON ``\\u``
escapes, which decode to the very same string.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (U+0080-U+009F: 8-bit CSI, OSC, NEL...),
# the line and paragraph separators, the bidirectional overrides and isolates
# (they reorder what follows them on screen), and lone surrogates (which
# cannot be encoded at all).
_WIDE = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f{_WIDE}]")
# json.dumps already writes C0 controls in strings as escapes; the newlines
# left in its output are its own indentation and stay.
_UNSAFE_IN_JSON = re.compile(f"[{_WIDE}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str) -> str:
    """``text`` with every control character written as a visible escape."""
    return _UNSAFE.sub(_shown, text)


def escape_json(document: str) -> str:
    """A JSON text with the same characters written as ``\\uXXXX`` (still the same JSON).

    They can only occur inside JSON strings, where ``\\uXXXX`` means the very
    character, so a parser reads back exactly the names that were written.
    """
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", document)
