"""The platforms' errors: every platform call may raise PlatformError; `permanent` says
whether retrying can help. Below everything else in platforms/, so the builders and the
interface share them without importing each other."""

from __future__ import annotations


class PlatformError(Exception):
    """An error talking to a platform. `permanent` errors will not go away by retrying."""

    permanent: bool = False

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class TransientError(PlatformError):
    permanent = False


class PermanentError(PlatformError):
    permanent = True
