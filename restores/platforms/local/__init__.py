"""The local platform: PostgreSQL 15 + pgBackRest clusters on this host, in a fleet directory.

`LocalPlatform` implements the Platform interface plus local-only lifecycle calls;
`ensure_run_as_user` creates the unprivileged OS user the clusters run as.
"""

from .platform import LocalPlatform
from .proc import ensure_run_as_user

__all__ = ["LocalPlatform", "ensure_run_as_user"]
