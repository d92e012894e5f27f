"""Start a server process, wait until it is ready, and stop it with its whole process group."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_handed_out_ports: set[int] = set()


class ComponentError(RuntimeError):
    """A test-bed component could not be installed, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and not handed out before by this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port
    raise ComponentError("no free TCP port on 127.0.0.1 after 100 tries")


def run_once(what: str, argv: Sequence[str | os.PathLike], **options) -> str:
    """Run a set-up command to completion; its stdout, or an error with everything it printed."""
    done = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=120, **options
    )
    if done.returncode != 0:
        raise ComponentError(f"{what} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A server started in its own session, its output captured in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.started_at = time.monotonic()
        full_env = dict(os.environ if env is None else env)
        if user is not None:
            full_env["HOME"] = pwd.getpwnam(user).pw_dir
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [str(arg) for arg in argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                user=user,
                group=pwd.getpwnam(user).pw_gid if user else None,
                extra_groups=[] if user else None,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def failure(self, what: str) -> ComponentError:
        """An error naming the component, what went wrong and the tail of its log."""
        return ComponentError(
            f"{self.name} {what}\n--- last lines of {self.log_path} ---\n{tail(self.log_path)}"
        )

    def wait_until(self, probe: Callable[[], bool], what: str, timeout: float) -> float:
        """Poll `probe` until it returns true; return the seconds since start.

        Fails fast if the process exits, and after `timeout` seconds, with the log tail.
        """
        deadline = time.monotonic() + timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                raise self.failure(f"exited with code {code} before it was {what}")
            try:
                if probe():
                    return time.monotonic() - self.started_at
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise self.failure(f"was not {what} within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, wait up to `timeout` seconds, then SIGKILL what is left."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
