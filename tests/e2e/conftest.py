"""Fixtures for the browser tests: a real fleet, a real Celery worker, a real Chromium.

One module shares one fleet (the cluster `hippo` with demo data and a first full backup), one
Celery worker process and one browser; a test that kills workers starts its own through
`worker_factory` (with beat and its sweep, if asked). Each test gets a fresh browser context
and, through pytest-django's `live_server` and `transactional_db`, committed data the worker
can read.

Nothing here downloads a browser: Playwright drives Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from restores import inventory, platforms
from restores.models import Cluster, Operation
from restores.platforms.base import PlatformError
from restores.platforms.local import LocalPlatform, ensure_run_as_user, ports
from restores.platforms.targets import RestoreTarget
from restores.services import clones
from tests.broker import use_broker

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"

# A Redis database only the browser tests use: the unit tests' broker is 14, a console run
# from the checkout uses 0.
# DR_E2E_REDIS_URL: another database, when two runs of the browser tests share a Redis.
E2E_REDIS_URL = os.getenv("DR_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
NAMESPACE = "local"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}

WORKER_READY_TIMEOUT = 60.0
LOG_TAIL_BYTES = 12_000


# --- the fleet ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class E2EFleet:
    platform: LocalPlatform
    root: Path
    run_as: str
    port_base: int


def _free_port_base(width: int = 10) -> int:
    """A base in 57000-58990: away from a demo fleet (55432) and, most of the time, from the
    integration tests' fleet."""
    return ports.free_port_base(57000, 59000, width)


@pytest.fixture(scope="module")
def e2e_fleet() -> Iterator[E2EFleet]:
    """`hippo` with demo data and a first full backup, in a fleet of its own."""
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700 and the run-as user could not enter.
    root = Path(tempfile.mkdtemp(prefix="drc-e2e-", dir="/tmp"))
    root.chmod(0o755)
    run_as = ensure_run_as_user()
    port_base = _free_port_base()
    platform = LocalPlatform(
        fleet_dir=root, run_as=run_as, namespace=NAMESPACE, port_base=port_base
    )
    try:
        ref = platform.cluster_create("hippo").ref
        platform.load_demo_data(ref)
        job = platform.backup_wait(
            ref, repo="repo1", backup_type="full", operation_id="e2e-hippo-initial", timeout=300
        )
        assert job.state == "succeeded", f"initial full backup failed: {job.message}\n{job.detail}"
        yield E2EFleet(platform, root, run_as, port_base)
    finally:
        with contextlib.suppress(PlatformError):
            for status in platform.clusters():
                with contextlib.suppress(PlatformError):
                    platform.cluster_destroy(status.ref)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def console_settings(settings, e2e_fleet: E2EFleet) -> Iterator[E2EFleet]:  # type: ignore[no-untyped-def]
    """Point this process (and the live server thread in it) at the e2e fleet."""
    settings.DR_PLATFORMS = ["local"]
    settings.DR_FLEET_DIR = e2e_fleet.root
    settings.DR_LOCAL_USER = e2e_fleet.run_as
    settings.DR_LOCAL_NAMESPACE = NAMESPACE
    settings.DR_LOCAL_PORT_BASE = e2e_fleet.port_base
    settings.DR_POLL_INTERVAL = 1
    platforms.override("local", e2e_fleet.platform)
    try:
        yield e2e_fleet
    finally:
        platforms.override("local", None)


@pytest.fixture
def user(transactional_db):  # type: ignore[no-untyped-def]
    """The DBA who logs in: an admin of every cluster."""
    from tests.e2e.helpers import make_user

    return make_user()


@pytest.fixture
def hippo_row(transactional_db, console_settings: E2EFleet) -> Cluster:  # type: ignore[no-untyped-def]
    """The console's row for hippo, from a real inventory sync of the e2e fleet."""
    result = inventory.platform_sync(platform_name="local")
    assert not result.errors, result.errors
    return Cluster.objects.get(platform="local", namespace=NAMESPACE, name="hippo")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:  # type: ignore[no-untyped-def]
    """A test database of their own (test_<name>_e2e) when the browser tests run by
    themselves: a unit-test run started meanwhile creates and drops test_<name>, and must not
    pull the database from under the live server and the worker. (In a whole-suite run the
    session's database is shared, and that is fine: one run at a time.)"""
    from django.conf import settings

    for db in settings.DATABASES.values():
        if db["ENGINE"] == "django.db.backends.sqlite3" or db["NAME"].startswith("test_"):
            continue  # SQLite, or the session's test database is set up already
        test = db.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + db['NAME']}_e2e"


# --- the broker and the worker -------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e_broker() -> Iterator[str]:
    """Tasks sent from this process (the live server's thread) go to the e2e Redis db."""
    from dr_console.celery import app

    client = redis.Redis.from_url(E2E_REDIS_URL)
    client.flushdb()
    previous = use_broker(E2E_REDIS_URL)
    with app.connection_for_write() as conn:
        assert conn.as_uri().endswith("/" + E2E_REDIS_URL.rsplit("/", 1)[1]), conn.as_uri()
    try:
        yield E2E_REDIS_URL
    finally:
        use_broker(previous)
        client.flushdb()
        client.close()


def _database_url(db: dict) -> str:
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"


@dataclasses.dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    nodename: str
    var_dir: Path

    def tail(self) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(max(0, self.log.stat().st_size - LOG_TAIL_BYTES))
                return handle.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no worker log: {exc})"

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker's process group, as a crash or the OOM killer would: no
        shutdown handlers, no message given back to the broker. Processes it started in
        sessions of their own (pgBackRest jobs, PostgreSQL servers) are not in the group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.var_dir, ignore_errors=True)


def start_worker(
    fleet: E2EFleet, broker: str, *, name: str, beat: bool = False,
    env: dict[str, str] | None = None,
) -> Worker:
    """Start a real `celery worker` process on the e2e broker, the test database and the e2e
    fleet, and wait until it answers a ping. `beat` embeds celery beat (the sweep); `env`
    overrides settings such as DR_SWEEP_INTERVAL."""
    from django.db import connection

    from dr_console.celery import app

    var_dir = Path(tempfile.mkdtemp(prefix="drc-e2e-var-"))
    log = var_dir / "celery.log"
    nodename = f"e2e-{os.getpid()}-{name}@{socket.gethostname()}"
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dr_console.settings",
        # The test database pytest-django created (test_dr_console[_e2e]), not the real one.
        "DATABASE_URL": _database_url(connection.settings_dict),
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": broker,
        "DR_VAR_DIR": str(var_dir),
        "DR_PLATFORMS": "local",
        "DR_FLEET_DIR": str(fleet.root),
        "DR_LOCAL_USER": fleet.run_as,
        "DR_LOCAL_NAMESPACE": NAMESPACE,
        "DR_LOCAL_PORT_BASE": str(fleet.port_base),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    argv = [
        str(CELERY), "-A", "dr_console", "worker", "--pool", "solo", "--concurrency", "1",
        "--loglevel", "INFO", "--hostname", nodename, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    if beat:
        # Beat's schedule file goes to the worker's own directory, never the checkout.
        argv += ["--beat", "--schedule", str(var_dir / "celerybeat-schedule")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    worker = Worker(proc, log, nodename, var_dir)
    try:
        # Ready in its log, then answering a ping sent through the test process's own broker
        # connection: proof that what this process sends reaches that worker.
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while " ready." not in worker.tail():
            if proc.poll() is not None:
                pytest.fail(f"the Celery worker exited with {proc.returncode}:\n{worker.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker was not ready in time:\n{worker.tail()}")
            time.sleep(0.2)
        while not app.control.ping(destination=[nodename], timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker does not answer on {broker}:\n{worker.tail()}")
    except BaseException:
        worker.remove()
        raise
    return worker


@pytest.fixture(scope="module")
def celery_worker(
    django_db_setup, e2e_fleet: E2EFleet, e2e_broker: str  # type: ignore[no-untyped-def]
) -> Iterator[Worker]:
    """One worker for the module, without beat: every step of an operation must be
    scheduled by the worker itself."""
    worker = start_worker(e2e_fleet, e2e_broker, name="module")
    try:
        yield worker
    finally:
        worker.remove()


class WorkerFactory:
    """Workers a test starts (and kills) itself; all stopped at the end of the test."""

    def __init__(self, fleet: E2EFleet, broker: str) -> None:
        self.fleet = fleet
        self.broker = broker
        self.workers: list[Worker] = []

    def start(self, *, beat: bool = False, env: dict[str, str] | None = None) -> Worker:
        worker = start_worker(
            self.fleet, self.broker, name=f"w{len(self.workers)}", beat=beat, env=env
        )
        self.workers.append(worker)
        return worker

    def remove_all(self) -> None:
        for worker in self.workers:
            worker.remove()


@pytest.fixture
def worker_factory(
    django_db_setup, e2e_fleet: E2EFleet, e2e_broker: str  # type: ignore[no-untyped-def]
) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(e2e_fleet, e2e_broker)
    try:
        yield factory
    finally:
        factory.remove_all()


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, so Django's
    # async-safety check would refuse every ORM call the tests and fixtures make here. Those
    # calls are plain synchronous code in one thread: the check does not apply.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def context(browser, live_server, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (cookies, pages) per test; screenshots of its pages on failure."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    ctx = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    ctx.set_default_timeout(15_000)
    # Every page runs under the console's Content-Security-Policy: anything it blocks (an
    # inline script or style, a foreign source) shows in the console and fails the test.
    blocked: list[str] = []
    ctx.on("console", lambda msg: blocked.append(msg.text)
           if "Content Security Policy" in msg.text else None)
    try:
        yield ctx
        assert not blocked, f"the Content-Security-Policy blocked: {blocked}"
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            out = Path(tempfile.mkdtemp(prefix="drc-e2e-failure-"))
            for i, page in enumerate(ctx.pages):
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(out / f"page{i}.png"), full_page=True)
                    (out / f"page{i}.html").write_text(page.content())
            print(f"e2e failure: screenshots and HTML of the open pages in {out}")
        ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
        funcargs = getattr(item, "funcargs", {})
        workers: list[Worker] = []
        if isinstance(funcargs.get("celery_worker"), Worker):
            workers.append(funcargs["celery_worker"])
        if isinstance(funcargs.get("worker_factory"), WorkerFactory):
            workers.extend(funcargs["worker_factory"].workers)
        if report.failed:
            for worker in workers:
                report.sections.append((f"Celery worker {worker.nodename} log (tail)",
                                        worker.tail()))
    return report


def submit_clone(hippo_row: Cluster, target: str) -> Operation:
    """The wizard's services, step by step: hippo's repo1 at latest into `target`."""
    draft = clones.draft_create(user=None, source=hippo_row)
    clones.draft_save_source(user=None, draft=draft, cluster=hippo_row, repo_name="repo1")
    clones.draft_save_point(user=None, draft=draft, point=RestoreTarget(kind="latest"), display={})
    clones.draft_save_target(user=None,
        draft=draft, answers=clones.TargetAnswers(name=target, namespace=NAMESPACE)
    )
    return clones.draft_submit(draft=draft, version=draft.version, user=None)
