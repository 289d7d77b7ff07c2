"""Running PostgreSQL and pgBackRest programs as the fleet's unprivileged OS user.

PostgreSQL refuses to run as root, and pgBackRest run as root leaves root-owned repo files
that break the owner's next backup. So when this process is root, every child drops to one
unprivileged account (`subprocess` user=/group=/extra_groups=); otherwise children run as
this process's own user. Children always get an explicit cwd, HOME, PATH and LANG: an
inherited cwd of /root makes initdb and pg_ctl complain, and LANG keeps messages parseable.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..base import PermanentError, TransientError
from ..pgbackrest import error_line

PG_ROOT = Path("/usr/lib/postgresql")
PGBACKREST = "/usr/bin/pgbackrest"


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_run_as_user(name: str = "drconsole") -> str:
    """The OS user that should own the fleet, created when missing.

    As root: creates `name` as a system user without home or login shell if it does not
    exist, and returns `name`. Not root: returns this process's own user name (children
    cannot switch users), and `name` is ignored.
    """
    if not is_root():
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


@dataclasses.dataclass(frozen=True)
class Account:
    """The OS account children run as."""

    name: str
    uid: int
    gid: int

    @property
    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)


def resolve_account(run_as: str | None) -> Account:
    """The account for children; PermanentError when it cannot be used."""
    if not is_root():
        me = pwd.getpwuid(os.geteuid())
        if run_as not in (None, me.pw_name):
            raise PermanentError(
                f"This process runs as {me.pw_name!r} and cannot run programs as {run_as!r}. "
                "Run the console as root, or leave run_as unset."
            )
        return Account(me.pw_name, me.pw_uid, me.pw_gid)
    if not run_as or run_as == "root":
        raise PermanentError(
            "The console runs as root, and PostgreSQL refuses to: set run_as (DR_RUN_AS) to "
            "an unprivileged OS user such as 'drconsole'."
        )
    try:
        entry = pwd.getpwnam(run_as)
    except KeyError:
        raise PermanentError(
            f"The OS user {run_as!r} does not exist. Create it (ensure_run_as_user does) or "
            "set run_as to an existing unprivileged user."
        ) from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def find_pg_bindir(pg_bindir: str | None) -> Path:
    """The PostgreSQL bin directory: the given one, or the highest version installed."""
    if pg_bindir:
        candidates = [Path(pg_bindir)]
    else:
        versions = [d for d in PG_ROOT.glob("*") if d.name.isdigit()]
        candidates = [d / "bin" for d in sorted(versions, key=lambda d: int(d.name))]
    usable = [c for c in candidates if (c / "initdb").is_file()]
    if not usable:
        where = pg_bindir or f"{PG_ROOT}/<version>/bin"
        raise PermanentError(f"No PostgreSQL server binaries (initdb) found in {where}.")
    return usable[-1]


def summarize_failure(proc: subprocess.CompletedProcess[str]) -> str:
    """One line saying why a command failed: pgBackRest's ERROR line, else stderr's last."""
    output = f"{proc.stderr}\n{proc.stdout}"
    line = error_line(output)
    if line:
        return line
    lines = [s.strip() for s in (proc.stderr or proc.stdout or "").splitlines() if s.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


class Runner:
    """Runs programs as `account` in `cwd` with a clean, explicit environment."""

    def __init__(self, account: Account, bindir: Path, cwd: Path) -> None:
        self.account = account
        self.bindir = bindir
        self.cwd = cwd

    def env(self) -> dict[str, str]:
        # HOME is the fleet: system users made by ensure_run_as_user have no home directory.
        return {
            "HOME": str(self.cwd),
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }

    def process_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for subprocess: cwd, env and, as root, the account switch."""
        kwargs: dict[str, Any] = {"cwd": self.cwd, "env": self.env()}
        if is_root():
            kwargs.update(user=self.account.uid, group=self.account.gid, extra_groups=[])
        return kwargs

    def run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        timeout: float = 300,
        check: bool = True,
        new_session: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv to completion. With check, a non-zero exit raises TransientError
        naming `what` and the ERROR line; a timeout always raises TransientError."""
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                start_new_session=new_session,
                **self.process_kwargs(),
            )
        except subprocess.TimeoutExpired:
            raise TransientError(
                f"{what} did not finish within {timeout:.0f} s.", detail=shlex.join(argv)
            ) from None
        except OSError as exc:
            raise TransientError(f"{what} could not be started: {exc}") from exc
        if check and proc.returncode != 0:
            raise TransientError(
                f"{what} failed: {summarize_failure(proc)}",
                detail=f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}",
            )
        return proc

    def spawn_detached(self, argv: Sequence[str], *, output_fd: int) -> subprocess.Popen[bytes]:
        """Start argv in its own session (so a dying caller does not take it down), with
        stdout and stderr on output_fd. The caller does not wait for it."""
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output_fd,
            stderr=output_fd,
            start_new_session=True,
            **self.process_kwargs(),
        )


_STAT_RE = re.compile(r"\)\s+(\S)\s+(.*)$", re.S)


def process_identity(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc, or None if there is no such
    process. The start time tells a reused pid from the original process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: parse after the last ')'.
    match = _STAT_RE.search(text)
    if not match:
        return None
    fields = match.group(2).split()
    return match.group(1), int(fields[18])


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """True while the process started as (pid, start_ticks) runs; zombies count as ended."""
    identity = process_identity(pid)
    if identity is None or identity[0] in ("Z", "X"):
        return False
    return start_ticks is None or identity[1] == start_ticks
