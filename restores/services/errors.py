"""The services' refusal: a message for the person at the keyboard, naming the form field it
belongs next to."""

from __future__ import annotations


class ServiceError(Exception):
    """A rule said no. `field` names the form field the message belongs next to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
