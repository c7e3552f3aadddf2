"""The run-folder lock: one ``neumod run`` writes into a folder at a time.

``<run>/.lock`` holds the holder's pid, host, process start time, invocation id,
command and start time (JSON). It is created atomically and exclusively (written to
a temporary file, then ``os.link``-ed into place, which fails when the lock exists),
so it is never seen half-written (where the file system has no hard links, an
exclusive create is used instead). A second run on the folder is refused with a
message naming the holder. A lock whose process is gone (same host, pid not running,
or running but started at another time: the pid was reused) is stale: it is taken
over with a message. A lock from another host cannot be checked from here and is
refused, telling which file to remove once that run is known to be dead.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Union

LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """The run folder is locked by a live run (or one this host cannot check)."""


def _proc_start(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, start: Optional[str] = None) -> bool:
    """Whether process ``pid`` runs on this host (and, when known, started at ``start``)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    if start is not None:
        now = _proc_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused by another process
    return True


def lock_path(run_dir: Union[str, Path]) -> Path:
    return Path(run_dir) / LOCK_FILE


def read_lock(run_dir: Union[str, Path]) -> Optional[dict]:
    """The holder recorded in the folder's lock, None when unlocked ({} when unreadable)."""
    try:
        data = json.loads(lock_path(run_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holder_alive(holder: dict) -> Optional[bool]:
    """True/False for a holder on this host; None when it is on another host."""
    if holder.get("host") != socket.gethostname():
        return None
    try:
        pid = int(holder.get("pid", -1))
    except (TypeError, ValueError):
        return False
    return pid_alive(pid, holder.get("pid_start"))


def describe(holder: dict) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
        f"{holder.get('started', '?')} (invocation {holder.get('invocation', '?')}: "
        f"{holder.get('command', '?')})"
    )


class RunLock:
    """``with RunLock(run_dir, invocation, command):`` holds the folder's lock."""

    def __init__(
        self,
        run_dir: Union[str, Path],
        invocation: str = "",
        command: str = "",
        log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    ):
        self.path = lock_path(run_dir)
        self.info = {
            "pid": os.getpid(),
            "pid_start": _proc_start(os.getpid()),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "invocation": invocation,
            "command": command,
        }
        self.log = log
        self.took_over: Optional[dict] = None  # the stale holder replaced, if any
        self._held = False

    def _try_create(self) -> bool:
        fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.info, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)  # atomic, fails when the lock exists
                return True
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: exclusive create instead
                return self._create_exclusive()
        finally:
            os.unlink(tmp)

    def _create_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.info, f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._try_create():
                self._held = True
                return self
            holder = read_lock(self.path.parent)
            if holder is None:
                continue  # released in between: try again
            alive = holder_alive(holder) if holder else False
            if alive:
                raise RunLocked(
                    f"{self.path.parent} is in use by another neumod run: {describe(holder)}. "
                    "Wait for it to finish, or use another --out"
                )
            if alive is None:
                raise RunLocked(
                    f"{self.path.parent} is locked by a run on another host: {describe(holder)}. "
                    f"If that run is dead, remove {self.path} and try again"
                )
            # stale: the holder's process is gone; replace the lock unless it changed since
            try:
                stale = self.path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}-{time.time_ns()}")
                os.rename(self.path, stale)
            except FileNotFoundError:
                continue
            moved = read_lock_file(stale)
            if moved != holder:  # another run took it over in between: put it back, retry
                try:
                    os.link(stale, self.path)
                except FileExistsError:
                    pass
                os.unlink(stale)
                continue
            os.unlink(stale)
            self.took_over = holder
            self.log(
                f"{self.path.parent}: taking over a stale lock (its process is gone): "
                + (describe(holder) if holder else "unreadable lock file")
            )
        raise RunLocked(f"could not lock {self.path.parent}: the lock keeps changing")

    def release(self) -> None:
        if self._held and read_lock(self.path.parent) == self.info:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self._held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_lock_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
