"""Label and field selectors as the API server parses and applies them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_EXISTS = re.compile(rf"({_KEY})")
_NOT_EXISTS = re.compile(rf"!\s*({_KEY})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s*\((.*)\)")
_COMPARE = re.compile(rf"({_KEY})\s*(==|=|!=|>|<)\s*(.*)")
_VALUE_RE = re.compile(_VALUE)

Matcher = Callable[[dict[str, str]], bool]


class SelectorError(ValueError):
    pass


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _value(text: str, term: str) -> str:
    value = text.strip()
    if len(value) > 63 or not _VALUE_RE.fullmatch(value):
        raise SelectorError(f"unable to parse requirement: invalid label value: {value!r}: "
                            f"in {term!r}")
    return value


def _requirement(term: str) -> Matcher:
    text = term.strip()
    if m := _NOT_EXISTS.fullmatch(text):
        key = m.group(1)
        return lambda labels: key not in labels
    if m := _SET.fullmatch(text):
        key, op = m.group(1), m.group(3)
        values = {_value(v, term) for v in m.group(4).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _COMPARE.fullmatch(text):
        key, op, raw = m.group(1), m.group(3), m.group(4)
        if op in (">", "<"):
            try:
                bound = int(raw.strip())
            except ValueError:
                raise SelectorError(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be "
                    f"an integer: {term!r}"
                ) from None
            return lambda labels: _int_compare(labels.get(key), op, bound)
        value = _value(raw, term)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.fullmatch(text):
        key = m.group(1)
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: found '{text}', expected: identifier")


def _int_compare(value: str | None, op: str, bound: int) -> bool:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return number > bound if op == ">" else number < bound


def parse_labels(selector: str | None) -> Matcher:
    """A predicate over a labels dict; raises SelectorError for a malformed selector."""
    if not selector or not selector.strip():
        return lambda labels: True
    matchers = [_requirement(term) for term in _split_top(selector)]
    return lambda labels: all(m(labels) for m in matchers)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _split_unescaped(text: str, sep: str) -> list[str]:
    return re.split(rf"(?<!\\){re.escape(sep)}", text)


def parse_fields(selector: str | None, allowed: Iterable[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate over an object; raises SelectorError for an unknown field or bad syntax."""
    if not selector or not selector.strip():
        return lambda obj: True
    allowed = set(allowed)
    checks: list[tuple[str, bool, str]] = []
    for term in _split_unescaped(selector, ","):
        m = re.fullmatch(r"\s*([^!=\s]+)\s*(==|=|!=)(.*)", term)
        if not m:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, value = m.group(1), m.group(2), _unescape(m.group(3).strip())
        if key not in allowed:
            raise SelectorError(f'field label not supported: {key}')
        checks.append((key, op == "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        for key, negate, value in checks:
            actual = field_value(obj, key)
            if (actual == value) == negate:
                return False
        return True

    return match


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a field a field selector names (`source` is source.component)."""
    if path == "source":
        path = "source.component"
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)
