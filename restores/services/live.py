"""The one place a request waits on a platform.

DESIGN keeps requests off the platforms: pages show what the last sync and step recorded.
Two questions cannot wait for a worker: whether a new cluster's name is free (the wizard,
a standby, a drill's scratch copy) and the review's server-side dry run. They are asked
here, through `ask`, with a deadline (DR_LIVE_CHECK_TIMEOUT seconds): past it the request
answers with a message rather than hanging on a slow API server.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from restores import platforms
from restores.platforms.base import Platform, TransientError

T = TypeVar("T")

LIVE_TIMEOUT = (
    "The {platform} platform did not answer within {seconds} s ({what}). Nothing was changed; "
    "try again in a moment."
)
# One pool for every request's questions: a question that outlives its deadline keeps its
# thread until the platform answers (or its own client timeout fires), never the request.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="dr-live")


def ask(platform_name: str, what: str, question: Callable[[Platform], T]) -> T:
    """`question(platform)`, or TransientError after DR_LIVE_CHECK_TIMEOUT seconds.
    PlatformError from the platform comes through as it is."""
    platform = platforms.get(platform_name)
    seconds = settings.DR_LIVE_CHECK_TIMEOUT
    future = _POOL.submit(question, platform)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        raise TransientError(LIVE_TIMEOUT.format(platform=platform_name, seconds=seconds,
                                                 what=what)) from None
