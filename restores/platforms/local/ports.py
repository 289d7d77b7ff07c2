"""A range of port numbers for a fleet of its own (test, browser-test and benchmark fleets).

Local clusters listen on unix sockets in their own fleet's run/ directory only, so two fleets
sharing a number would not clash; keeping them apart (and off any TCP listener) keeps the
process list readable.
"""

from __future__ import annotations

import random
import socket


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(low: int, high: int, width: int = 10) -> int:
    """A random multiple-of-`width` base in [low, high) whose next `width` ports are free."""
    for _ in range(100):
        base = random.randrange(low, high, width)  # noqa: S311  (a spread, not a secret)
        if all(port_free(p) for p in range(base, base + width)):
            return base
    raise RuntimeError(f"no free range of {width} ports in {low}-{high}")
