"""The web worker settles its heap once loaded (dr_console/heap.py): a fresh interpreter that
imports the WSGI application has its start-up objects frozen out of later collections."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_loading_the_wsgi_application_freezes_what_start_up_made() -> None:
    code = ("import gc; assert gc.get_freeze_count() == 0; import dr_console.wsgi; "
            "from django.urls import get_resolver; "
            "print(gc.get_freeze_count(), 'restores.views.reports' in __import__('sys').modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "DEBUG": "false"})
    assert out.returncode == 0, out.stderr
    frozen, views_loaded = out.stdout.split()
    assert int(frozen) > 10_000  # Django's and the console's modules, not a handful
    assert views_loaded == "True"  # every view was imported before the freeze
