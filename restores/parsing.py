"""Reading what URLs send: numbers through one helper, so no view trips on '²' (which
str.isdigit accepts and int() refuses) or on a number no database column can hold; filter
words without the control characters PostgreSQL refuses."""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]{1,18}")
# Control characters: PostgreSQL refuses NUL in any text, and none belongs in a filter.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # ASCII digits only; 18 fit a 64-bit integer
# The largest value a PostgreSQL bigint (a primary key) holds.
BIGINT_MAX = 2**63 - 1


def whole_number(text: object, *, default: int | None = None, minimum: int = 0,
                 maximum: int = BIGINT_MAX) -> int | None:
    """`text` as a whole number within [minimum, maximum], else `default`."""
    value = str(text if text is not None else "").strip()
    if not _WHOLE.fullmatch(value):
        return default
    number = int(value)
    return number if minimum <= number <= maximum else default


def page_number(text: object) -> int:
    """A page of a paged list: 1 for anything that is not a page number."""
    return whole_number(text, default=1, minimum=1, maximum=1_000_000) or 1


def filter_text(text: object, *, max_length: int = 100) -> str:
    """A search or filter word from a URL: control characters removed, trimmed, bounded."""
    return _CONTROL.sub("", str(text if text is not None else "")).strip()[:max_length]
