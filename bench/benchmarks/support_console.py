"""The console side of the live benchmarks (recovery, visibility, kube_sync): a fresh schema of
the bench database, a clone made through the wizard's services and driven by loop.advance,
a real Celery worker, and reading the operation page's progress poll. Registers no benchmark.

Functions that touch Django import it inside (this module is imported before Django is set
up); the parsers at the bottom are pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from bench.framework import BenchError

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
# Redis databases the bench may take for its worker, the first one no client is on (or
# BENCH_REDIS_URL): the console uses 0, the e2e tests 11 and 13, the unit tests 14. A second
# worker on the same database would take the bench's messages.
REDIS_CANDIDATES = tuple(f"redis://127.0.0.1:6379/{db}" for db in (15, 12, 10, 9))
WORKER_READY_TIMEOUT = 60.0

# What the clone's steps say (restores/platforms/local/clone.py), in order.
RESTORE_STARTED = "Started pgBackRest: restore of"
SERVER_STARTED = "Started PostgreSQL"
PROMOTED = "is promoted"


# -- the bench database ------------------------------------------------------------------------


@contextlib.contextmanager
def live_schema(base: str) -> Iterator[tuple[str, str]]:
    """Set Django up against the bench database and give this run a schema of its own,
    `<base>_<pid>`, migrated, with the connection pointed at it: (database URL, schema). Two
    runs at once (two people, or a run and a test) never drop each other's rows. The schema is
    dropped at the end, and so are those of earlier runs whose process is gone."""
    from bench import django_env

    url = django_env.setup()
    from django.core.management import call_command
    from django.db import connection

    qn = connection.ops.quote_name
    schema = f"{base}_{os.getpid()}"
    django_env.use_schema(None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                       [f"{base}\\_%"])
        stale = [name for (name,) in cursor.fetchall()
                 if name == schema or not _alive(schema_pid(name, base))]
        for name in stale:
            cursor.execute(f"DROP SCHEMA IF EXISTS {qn(name)} CASCADE")
        cursor.execute(f"CREATE SCHEMA {qn(schema)}")
    try:
        django_env.use_schema(schema)
        call_command("migrate", verbosity=0, interactive=False)
        yield url, schema
    finally:
        django_env.use_schema(None)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {qn(schema)} CASCADE")


def schema_pid(name: str, base: str) -> int | None:
    """The pid in a schema name `<base>_<pid>`, None for any other name."""
    rest = name[len(base) + 1:] if name.startswith(f"{base}_") else ""
    return int(rest) if rest.isdigit() else None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True  # not ours to drop
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def schema_url(url: str, schema: str) -> str:
    """The database URL with `-c search_path=<schema>`, for another process (the worker)."""
    parts = urlsplit(url)
    query = urlencode({"options": f"-c search_path={schema}"}, quote_via=quote)
    return urlunsplit(parts._replace(query=query))


def bench_user():  # type: ignore[no-untyped-def]
    from bench.pages import bench_user as user_with_grant

    return user_with_grant()


# -- a clone through the console ---------------------------------------------------------------


def clone_submit(*, source: Any, point: Any, target: str, namespace: str) -> tuple[Any, float]:
    """Fill in the wizard (services, as its views call them) and submit it: the operation and
    the wall-clock time just before the submit, the user's click."""
    from restores.services import clones

    user = bench_user()
    draft = clones.draft_create(user=user, source=source)
    clones.draft_save_source(user=None, draft=draft, cluster=source, repo_name="repo1")
    clones.draft_save_point(user=None, draft=draft, point=point, display={})
    clones.draft_save_target(user=None, draft=draft, answers=clones.TargetAnswers(name=target,
                                                                        namespace=namespace))
    clicked = time.time()
    op = clones.draft_submit(draft=draft, version=draft.version, user=user)
    return op, clicked


def drive(op_id: str, *, timeout: float) -> tuple[Any, list[tuple[float, float]]]:
    """Run the operation's steps in this process as the worker would: loop.advance, then
    wait until its next_check_at (the countdown the Celery task would be scheduled with), until
    it is terminal. Returns the finished operation and each step's (start, seconds), the start
    in epoch seconds."""
    from django.utils import timezone

    from restores.models import Operation
    from restores.steps import loop

    deadline = time.monotonic() + timeout
    steps: list[tuple[float, float]] = []
    while True:
        started, t0 = time.time(), time.perf_counter()
        loop.advance(op_id)
        steps.append((started, time.perf_counter() - t0))
        op = Operation.objects.get(pk=op_id)
        if op.is_terminal:
            return op, steps
        if time.monotonic() > deadline:
            raise BenchError(f"operation {op_id} still {op.status} ({op.step}) after "
                             f"{timeout:.0f} s")
        wait = (op.next_check_at - timezone.now()).total_seconds() if op.next_check_at else 0.05
        time.sleep(min(max(wait, 0.0), 5.0))


@contextlib.contextmanager
def no_dispatch() -> Iterator[None]:
    """operation_create sends the first step to Celery once committed; the recovery benchmark
    drives the steps itself, so nothing must reach a broker (or a console's worker on it)."""
    from restores.services import dispatch

    original = dispatch.send
    dispatch.send = lambda task, *args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        dispatch.send = original  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class ClonePhases:
    """Seconds from the click to each moment the operation's events record (None: no such
    event)."""

    restore_started: float | None
    server_started: float | None
    promoted: float | None
    done: float


def clone_phases(clicked: float, events: Sequence[tuple[float, str]],
                 finished: float) -> ClonePhases:
    """Read a clone operation's events (epoch seconds, message): when the restore was launched,
    when the server was started, when the console saw it promoted, relative to the click."""

    def first(text: str) -> float | None:
        return next((at - clicked for at, message in events if text in message), None)

    return ClonePhases(first(RESTORE_STARTED), first(SERVER_STARTED), first(PROMOTED),
                       finished - clicked)


def operation_events(op: Any) -> list[tuple[float, str]]:
    return [(e.at.timestamp(), e.message) for e in op.events.order_by("at", "id")]


# -- a real Celery worker ----------------------------------------------------------------------


@dataclasses.dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    nodename: str
    var_dir: Path

    def tail(self, size: int = 8000) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(max(0, self.log.stat().st_size - size))
                return handle.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no worker log: {exc})"

    def stop(self, keep_log: Path | None = None) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if keep_log is not None:
            with contextlib.suppress(OSError):
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log, keep_log)
        shutil.rmtree(self.var_dir, ignore_errors=True)


def _reset_producer_pool() -> None:
    """Forget the Celery app's broker connections, so the next send uses the current URL (the
    same dance as tests/e2e/conftest.py)."""
    from kombu import pools

    from dr_console.celery import app

    pools.reset()
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


@contextlib.contextmanager
def celery_worker(*, database_url: str, env: dict[str, str],
                  keep_log: Path | None = None) -> Iterator[Worker]:
    """A real Celery worker as scripts/run.sh starts it on this host (`worker --beat
    --concurrency 2`: the sweep resumes operations whose next step went missing) on the bench's
    Redis database and `database_url`, with `env` on top (the platform settings); tasks this
    process sends go to the same broker. Stopped at the end; its log copied to `keep_log`."""
    import redis

    from dr_console.celery import app

    broker, client = _free_broker(redis)
    client.flushdb()
    previous = app.conf.broker_url
    app.conf.broker_url = broker
    _reset_producer_pool()
    var_dir = Path(tempfile.mkdtemp(prefix="drc-bench-worker-"))
    log = var_dir / "celery.log"
    nodename = f"bench-{os.getpid()}@{socket.gethostname()}"
    full_env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "dr_console.settings",
        "DATABASE_URL": database_url, "DATABASE_CONN_MAX_AGE": "0", "REDIS_URL": broker,
        "DR_VAR_DIR": str(var_dir), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "DEBUG": "false",
        **env,
    }
    argv = [str(CELERY), "-A", "dr_console", "worker", "--beat", "--concurrency", "2",
            "--schedule-filename", str(var_dir / "celerybeat-schedule"), "--loglevel", "INFO",
            "--hostname", nodename, "--without-gossip", "--without-mingle"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(proc, log, nodename, var_dir)
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while " ready." not in worker.tail():
            if proc.poll() is not None:
                raise BenchError(f"the Celery worker exited with {proc.returncode}:\n"
                                 f"{worker.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the Celery worker was not ready in time:\n{worker.tail()}")
            time.sleep(0.2)
        while not app.control.ping(destination=[nodename], timeout=1.0):
            if time.monotonic() > deadline:
                raise BenchError(f"the Celery worker does not answer on {broker}")
        yield worker
    finally:
        worker.stop(keep_log)
        app.conf.broker_url = previous
        _reset_producer_pool()
        client.flushdb()
        client.close()


def _free_broker(redis: Any) -> tuple[str, Any]:
    """The first candidate Redis database no other client has selected, and a client on it."""
    wanted = os.environ.get("BENCH_REDIS_URL")
    for url in (wanted,) if wanted else REDIS_CANDIDATES:
        client = redis.Redis.from_url(url)
        db = client.connection_pool.connection_kwargs.get("db", 0)
        if not foreign_clients(client.client_list(), client.client_id(), db):
            return url, client
        client.close()
    raise BenchError(f"other clients are on every Redis database the bench may use "
                     f"({wanted or ', '.join(REDIS_CANDIDATES)}): a worker there would take the "
                     "bench's messages. Set BENCH_REDIS_URL to a database nothing else uses.")


def foreign_clients(clients: Sequence[dict[str, Any]], me: int, db: int) -> int:
    """How many Redis clients other than `me` have database `db` selected (CLIENT LIST)."""
    return sum(1 for c in clients if int(c.get("db", -1)) == db and int(c.get("id", -1)) != me)


_SWEPT = re.compile(r"restores\.sweep_operations\[[^\]]+\] succeeded in [0-9.e-]+s: (\d+)")


def swept(log: str) -> int:
    """How many operations the beat's sweep had to resume (their next step had gone missing),
    from the worker's log."""
    return sum(int(n) for n in _SWEPT.findall(log))


# -- the operation page's progress poll --------------------------------------------------------

_STATUS = re.compile(r'<section id="progress"[^>]*\bdata-status="([a-z_]+)"')
_VERSION = re.compile(r'hx-get="[^"]*\?v=(\d+)"')
_EVERY = re.compile(r'<section id="progress"[^>]*\bhx-trigger="every (\d+(?:\.\d+)?)(m?s)"')
_MESSAGE = re.compile(r'<span class="message">(.*?)</span>', re.S)


@dataclasses.dataclass(frozen=True)
class Progress:
    status: str
    version: int | None  # what the next poll sends as ?v= (None once terminal: no more polls)
    messages: tuple[str, ...]
    every_s: float | None = None  # how often the page polls (its hx-trigger), None once terminal


def parse_progress(html: str) -> Progress:
    """The status, poll version and event messages of the operation page's progress region
    (templates/restores/operation.html, partial `progress`)."""
    status = _STATUS.search(html)
    if status is None:
        raise ValueError("no progress region in the page")
    version = _VERSION.search(html)
    every = _EVERY.search(html)
    return Progress(status.group(1), int(version.group(1)) if version else None,
                    tuple(m.strip() for m in _MESSAGE.findall(html)),
                    float(every.group(1)) / (1000 if every.group(2) == "ms" else 1)
                    if every else None)


def page_poll(client: Any, path: str) -> float:
    """How often the operation page at `path` polls its progress while the operation is in
    flight, as its hx-trigger says: what a browser adds to the lag at worst."""
    progress = parse_progress(client.get(path).content.decode())
    if progress.every_s is None:
        raise BenchError(f"{path} does not poll (status {progress.status}): ask for it earlier")
    return progress.every_s


@dataclasses.dataclass(frozen=True)
class Sighting:
    at: float  # epoch seconds of the response that showed it
    polls: int  # requests made until then
    progress: Progress


def poll_until(client: Any, path: str, version: int, *, seen: Any, every: float = 0.1,
               timeout: float = 300) -> Sighting:
    """Poll the operation page as htmx does (HX-Request, ?v=<last version>; 204 while nothing
    changed) every `every` seconds until `seen(progress)` is true."""
    headers = {"HX-Request": "true"}
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        started = time.monotonic()
        response = client.get(f"{path}?v={version}", headers=headers)
        polls += 1
        if response.status_code == 200:
            progress = parse_progress(response.content.decode())
            if seen(progress):
                return Sighting(time.time(), polls, progress)
            if progress.version is None:  # terminal, and not what we wait for
                raise BenchError(f"{path} ended {progress.status} without showing the change: "
                                 f"{' / '.join(progress.messages[-3:])}")
            version = progress.version if progress.version is not None else version
        elif response.status_code != 204:
            raise BenchError(f"GET {path} answered {response.status_code}")
        if time.monotonic() > deadline:
            raise BenchError(f"{path} did not show the change within {timeout:.0f} s")
        time.sleep(max(0.0, every - (time.monotonic() - started)))


def epoch(value: dt.datetime) -> float:
    return value.timestamp()
