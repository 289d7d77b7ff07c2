"""The platforms the console drives, by name. Views and services never import one directly."""

from __future__ import annotations

import datetime as dt
import threading

from django.conf import settings

from .base import PermanentError, Platform

_lock = threading.Lock()
_instances: dict[str, Platform] = {}


def _build(name: str) -> Platform:
    if name == "local":
        from .local import LocalPlatform

        return LocalPlatform(
            fleet_dir=settings.DR_FLEET_DIR,
            run_as=settings.DR_LOCAL_USER or None,
            namespace=settings.DR_LOCAL_NAMESPACE,
            port_base=settings.DR_LOCAL_PORT_BASE,
            pg_bindir=settings.DR_PG_BINDIR or None,
            poll_interval=dt.timedelta(milliseconds=settings.DR_LOCAL_POLL_MS),
        )
    if name == "kubernetes":
        from .kubernetes import KubernetesPlatform

        return KubernetesPlatform.from_settings(settings)
    raise PermanentError(f"The {name!r} platform is not available in this console.")


def get(name: str) -> Platform:
    """The platform called `name` (one instance per process)."""
    with _lock:
        if name not in _instances:
            _instances[name] = _build(name)
        return _instances[name]


def enabled() -> list[str]:
    return list(settings.DR_PLATFORMS)


def override(name: str, platform: Platform | None) -> None:
    """Install (or with None, forget) the instance used for `name`: the tests' one seam."""
    with _lock:
        if platform is None:
            _instances.pop(name, None)
        else:
            _instances[name] = platform
