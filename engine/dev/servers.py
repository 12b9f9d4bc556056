"""The detached server processes of the local stack: spawn, pid files, identity, readiness.

A server runs in its own session with its output in a log file, so it outlives the CLI
call that started it; its pid lives in a pid file. Only a pid whose command line and
working directory (read from ``/proc``, so Linux only) show it is the very process we
started is ever signalled, so a reused pid or somebody else's server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXTERNAL_CHECK_TIMEOUT_S",
    "LOG_TAIL_LINES",
    "STOP_TIMEOUT_S",
    "Server",
    "StackError",
    "describe",
    "forget",
    "is_ours",
    "lock",
    "log_tail",
    "our_pid",
    "port_accepts",
    "port_in_use",
    "probe_error",
    "process_alive",
    "require_free_port",
    "spawn",
    "tail_text",
    "terminate",
    "wait_ready",
]

log = logging.getLogger(__name__)

EXTERNAL_CHECK_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 30

# Popen objects of the servers this process started. Holding them keeps Popen.__del__ from
# warning that the (deliberately detached) child is still running, and lets us reap it.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """The stack cannot be brought up (or checked) as asked; the message says what to do."""


@dataclass(frozen=True)
class Server:
    """What tells one of our processes apart from every other process on the machine,
    and where it listens and logs."""

    name: str
    workdir: Path  # its cwd; unique to this state dir
    marker: str  # must occur in its /proc/<pid>/cmdline
    pid_file: Path
    port: int  # the loopback port that must accept connections before it is probed
    logs: tuple[Path, ...]  # shown (their last lines) when it fails to start


def spawn(server: Server, cmd: list[str], out: Path) -> int:
    """Start `cmd` in its own session so it survives the caller; record its pid."""
    server.workdir.mkdir(parents=True, exist_ok=True)
    log.debug("spawning %s: %s", server.name, shlex.join(cmd))
    with out.open("ab") as sink:
        sink.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
        sink.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=server.workdir,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    tmp = server.pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(server.pid_file)
    return proc.pid


def wait_ready(server: Server, pid: int, probe: Callable[[float], None], timeout: float) -> None:
    """Poll `probe` until it passes; raise with the tail of the log if the process dies
    or `timeout` runs out (the tail is taken now, before any shutdown noise)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if not process_alive(pid):
            raise StackError(f"{server.name} exited during startup.\n{log_tail(server)}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # TCP first: the client libraries log an error for every refused connection.
        if port_accepts("127.0.0.1", server.port):
            try:
                probe(min(5.0, max(remaining, 0.5)))
                return
            except Exception as exc:
                last = exc
        time.sleep(0.25)
    why = f" Last error: {describe(last)}." if last else ""
    raise StackError(
        f"{server.name} did not become ready within {timeout:.0f}s.{why}\n{log_tail(server)}"
    )


def terminate(server: Server, pid: int) -> None:
    """Stop `pid` if it is still `server` (SIGTERM, then SIGKILL); drop its pid file."""
    if is_ours(server, pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        reap(server, pid, time.monotonic() + STOP_TIMEOUT_S)
    else:
        server.pid_file.unlink(missing_ok=True)
        forget(pid)


def reap(
    server: Server, pid: int, deadline: float, say: Callable[[str], None] | None = None
) -> None:
    """Wait until the signalled `pid` is gone, SIGKILL it if it is still `server` after
    `deadline`, then drop its pid file."""
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid) and is_ours(server, pid):
        if say is not None:
            say(f"{server.name} (pid {pid}) ignored SIGTERM; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while process_alive(pid):
            time.sleep(0.05)
    server.pid_file.unlink(missing_ok=True)
    forget(pid)


def log_tail(server: Server) -> str:
    parts = []
    for f in server.logs:
        if f.exists() and f.stat().st_size:
            parts.append(f"--- last lines of {f}:\n{_tail_file(f)}")
    return "\n".join(parts) or "(no log output)"


def our_pid(server: Server) -> int | None:
    """The pid in the pid file if that process is still ours; drops a stale pid file."""
    try:
        pid = int(server.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if process_alive(pid) and is_ours(server, pid):
        return pid
    log.debug("removing stale pid file %s (pid %s)", server.pid_file, pid)
    server.pid_file.unlink(missing_ok=True)
    return None


def is_ours(server: Server, pid: int) -> bool:
    """Same command and same working directory as we started it with."""
    try:
        cmdline_bytes = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        cmdline = cmdline_bytes.decode(errors="replace")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return server.marker in cmdline and cwd == server.workdir


@contextlib.contextmanager
def lock(state_dir: Path) -> Iterator[None]:
    """Serialize up/down on one state dir (two terminals, or parallel test runs)."""
    with (state_dir / "stack.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def forget(pid: int) -> None:
    """Drop our Popen for a stopped server, reaping it first."""
    child = _children.pop(pid, None)
    if child is not None:
        child.poll()


def process_alive(pid: int) -> bool:
    """True while any thread of `pid` runs.

    Our own children are asked through Popen (which also reaps them). For others, a zombie
    counts as dead, but only once every thread is: the JVM's main thread exits, leaving the
    process 'Z' in /proc/<pid>/stat, while its other threads are still shutting down and
    still hold the ports.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # that thread just ended
        if stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
            return True
    return False


# ---------------------------------------------------------------------- ports


def require_free_port(port: int, setting: str, what: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} on 127.0.0.1 is already in use by a process that is not this "
            f"stack's {what}; stop it, or choose another port with {setting}=<port>."
        )


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------- messages


def probe_error(check: Callable[[], None]) -> str:
    """'' if `check` passes, else a one-line reason."""
    try:
        check()
    except Exception as exc:
        return describe(exc)
    return ""


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, StackError):
        return str(exc).splitlines()[0]
    text = str(exc) or repr(exc)
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}").splitlines()[0]


def tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(fh.tell() - 64 * 1024, 0))
        return tail_text(fh.read().decode(errors="replace"), lines)
