"""How many generated examples the property tests ran, by what they exercised: printed at
the end of the run (tests/conftest.py) for the record."""

from __future__ import annotations

from collections import Counter

examples: Counter[str] = Counter()


def count(what: str) -> None:
    examples[what] += 1
