"""The Celery app's broker, for tests that move it: its URL, and forgetting its connections
so the next send uses the new one."""

from __future__ import annotations

import contextlib


def reset_producer_pool() -> None:
    """Forget the Celery app's broker connections, so the next send uses the current URL."""
    from kombu import pools

    from dr_console.celery import app

    # The app's pools live in kombu's process-wide registry, keyed by the connection: closing
    # one without clearing the registry would hand the closed pool back to the next module
    # ("Acquire on closed pool"). reset() closes them all and empties the registry.
    pools.reset()
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


def use_broker(url: str) -> str:
    """Send this process's tasks to `url` from now on; the URL used before."""
    from dr_console.celery import app

    previous = str(app.conf.broker_url)
    app.conf.broker_url = url
    reset_producer_pool()
    return previous
