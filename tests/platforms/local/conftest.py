"""Fixtures for the local platform's integration tests: one throwaway fleet per session.

These run real PostgreSQL servers and pgBackRest as the unprivileged run-as user. They need
neither Django's database nor Celery.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from restores.platforms.base import ClusterRef, PlatformError
from restores.platforms.local import LocalPlatform, ensure_run_as_user, ports
from tests.platforms.local.helpers import SYSTEM_PATHS, snapshot


def free_port_base(width: int = 10) -> int:
    """A base in 56000-59990, never a demo fleet's numbers (which start at 55432)."""
    return ports.free_port_base(56000, 60000, width)


@pytest.fixture(autouse=True)
def dispatched() -> list[str]:
    """Replaces the suite-wide Celery stub: these tests never import the Django tasks."""
    return []


@pytest.fixture(scope="session")
def system_paths_before() -> dict[str, list[tuple[str, int, int]] | None]:
    """The system pgBackRest paths before the test fleet existed."""
    return snapshot(SYSTEM_PATHS)


@pytest.fixture(scope="session")
def local(system_paths_before: dict) -> Iterator[LocalPlatform]:
    """A LocalPlatform on a fresh fleet directory; all clusters are destroyed at the end."""
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, so the run-as user could not enter.
    root = Path(tempfile.mkdtemp(prefix="drc-fleet-", dir="/tmp"))
    root.chmod(0o755)
    platform = LocalPlatform(
        fleet_dir=root, run_as=ensure_run_as_user(), port_base=free_port_base()
    )
    try:
        yield platform
    finally:
        with contextlib.suppress(PlatformError):
            for status in platform.clusters():
                with contextlib.suppress(PlatformError):
                    platform.cluster_destroy(status.ref)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def hippo_ref(local: LocalPlatform) -> ClusterRef:
    """The shared cluster: created once, with the demo data loaded."""
    ref = local.cluster_create("hippo").ref
    local.load_demo_data(ref)
    return ref
