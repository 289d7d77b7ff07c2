"""What a web worker does once it has loaded, before its first request.

Python's collector runs a full collection whenever enough objects have outlived the younger
ones, and a full collection visits every tracked object: in a worker those are mostly the
~100,000 that importing Django and the console made, which never die. On a 2-core machine
that costs 40-70 ms, charged to whichever request crossed the threshold (one in six or so
of the audit report's). `settle` imports every view, collects once, and freezes what is
left (`gc.freeze`, Python 3.7+), so later collections visit only what requests make.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Import every view, then move every object alive now out of the collector's way."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (loads every view module)
    gc.collect()
    gc.freeze()
