"""Running commands on cluster login nodes through the system OpenSSH client.

The ``ssh`` binary (not a Python SSH library) is used on purpose: users' ``~/.ssh/config``,
ProxyJump hosts, agents, hardware keys and already-authenticated ControlMaster sessions (clusters
that ask for a second factor once a day) all work as they do in a terminal.

One multiplexed connection per (user, host): if the user's own configuration already has a live
master for the host (``ssh -O check``), it is reused as is; otherwise this module opens its own
master with a short ControlPath (``/tmp/evp-XXXX/%C``: Unix socket paths are limited to about 104
bytes) and closes it with ``ssh -O exit`` in :meth:`SshTransport.close`; an idle master also exits
by itself after ``ControlPersist`` seconds should the process die first. Every call uses
``BatchMode=yes`` (fail, never hang on a password prompt) and a connection timeout.

Commands never carry data from the execution DB: callers send constant scripts and pass paths on
stdin; anything else a caller puts in a command must go through :func:`shlex.quote`.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger("evalport.sources.ssh")

DEFAULT_CONNECT_TIMEOUT = 15
CONTROL_PERSIST_SECONDS = 300


class SshError(Exception):
    """The host cannot be reached or refused us; the message says what ssh said and what to do."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """``user@host`` as the execution DB recorded it (``user`` may be left to ~/.ssh/config)."""

    host: str
    user: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("host", self.host), ("user", self.user or "x")):
            if not value or value.startswith("-") or any(c.isspace() or ord(c) < 32 for c in value):
                raise SshError(f"refusing the {label} {value!r}: not a valid ssh {label} name")
        if self.user and "@" in self.user:
            raise SshError(f"refusing the user {self.user!r}: not a valid ssh user name")

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def sh_command(script: str, *args: str) -> str:
    """``sh -c SCRIPT evalport ARGS...`` for the remote login shell, every part quoted."""
    return " ".join(["sh", "-c", shlex.quote(script), "evalport", *(shlex.quote(a) for a in args)])


def _ssh_failure(target: SshTarget, stderr: str) -> str:
    said = " ".join(stderr.strip().splitlines()[-3:]) or "no message"
    return (
        f"cannot reach {target.destination} over ssh ({said}); check that "
        f"`ssh {target.destination} true` works without a prompt (evalport runs ssh with "
        "BatchMode=yes); for clusters with two-factor login, open a ControlMaster session first "
        "(see docs/sources/slurm.md)"
    )


class SshTransport:
    """Runs commands and streams on (user, host) targets over one multiplexed connection each."""

    def __init__(
        self,
        options: Sequence[str] = (),
        *,
        config_file: str | None = None,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        ssh_binary: str = "ssh",
    ) -> None:
        self.options = list(options)
        if config_file:
            self.options = ["-F", str(config_file), *self.options]
        self.connect_timeout = connect_timeout
        self.ssh_binary = ssh_binary
        self._control_dir: Path | None = None
        self._masters: dict[SshTarget, list[str]] = {}  # target -> the options that reach its master
        self._opened: set[SshTarget] = set()  # the masters this transport started (and must close)
        self._failed: dict[SshTarget, str] = {}
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------
    def _common(self) -> list[str]:
        return [
            self.ssh_binary,
            *self.options,
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ]

    def _control_path(self) -> str:
        if self._control_dir is None:
            self._control_dir = Path(tempfile.mkdtemp(prefix="evp-", dir="/tmp"))
        return str(self._control_dir / "%C")

    def connect(self, target: SshTarget) -> list[str]:
        """The ssh options that reach ``target``'s master connection, opening it if needed."""
        with self._lock:
            if target in self._masters:
                return self._masters[target]
            if target in self._failed:
                raise SshError(self._failed[target])
            # The user's own live master (from ~/.ssh/config), e.g. one authenticated with 2FA.
            check = subprocess.run(
                [*self._common(), "-O", "check", "--", target.destination],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.connect_timeout + 5,
            )
            if check.returncode == 0:
                log.debug("reusing the existing ssh master connection to %s", target.destination)
                self._masters[target] = ["-o", "ControlMaster=no"]
                return self._masters[target]
            opts = ["-o", f"ControlPath={self._control_path()}"]
            assert self._control_dir is not None
            err_path = self._control_dir / "master.err"
            # The master goes to the background (-f) holding its stderr: a file, never a pipe,
            # or reading the pipe would wait for the master to exit.
            with open(err_path, "w+b") as err:
                proc = subprocess.run(
                    [
                        *self._common(),
                        *opts,
                        "-o",
                        "ControlMaster=yes",
                        "-o",
                        f"ControlPersist={CONTROL_PERSIST_SECONDS}",
                        "-f",
                        "-N",
                        "--",
                        target.destination,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=self.connect_timeout * 4 + 10,
                )
                err.seek(0)
                stderr = err.read().decode(errors="replace")
            if proc.returncode != 0:
                self._failed[target] = _ssh_failure(target, stderr)
                raise SshError(self._failed[target])
            self._opened.add(target)
            self._masters[target] = [*opts, "-o", "ControlMaster=no"]
            return self._masters[target]

    def argv(self, target: SshTarget, command: str) -> list[str]:
        """The full ssh command line running ``command`` (a shell string) on ``target``."""
        return [*self._common(), *self.connect(target), "--", target.destination, command]

    # -- running -------------------------------------------------------------------------------
    def run(
        self, target: SshTarget, command: str, *, input: bytes | None = None, timeout: float | None = 600
    ) -> CommandResult:
        """Runs ``command``; exit code 255 (ssh's own failure) raises SshError."""
        try:
            proc = subprocess.run(
                self.argv(target, command),
                input=input if input is not None else b"",
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SshError(f"{target.destination}: the remote command took longer than {timeout} s") from None
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode == 255:
            raise SshError(_ssh_failure(target, stderr))
        return CommandResult(proc.returncode, proc.stdout, stderr)

    def popen(self, target: SshTarget, command: str, *, stderr: IO[bytes]) -> subprocess.Popen[bytes]:
        """Starts ``command`` with pipes for stdin and stdout (for streams such as tar)."""
        return subprocess.Popen(
            self.argv(target, command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )

    def close(self) -> None:
        """Closes the masters this transport opened; the user's own masters stay up."""
        with self._lock:
            for target in self._opened:
                subprocess.run(
                    [*self._common(), *self._masters[target][:2], "-O", "exit", "--", target.destination],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                )
            self._opened.clear()
            self._masters.clear()
            self._failed.clear()
            if self._control_dir is not None:
                shutil.rmtree(self._control_dir, ignore_errors=True)
                self._control_dir = None


class LocalRunner:
    """The same interface as an ssh target, for commands on this machine (on the cluster itself)."""

    def run(self, command: str, *, input: bytes | None = None, timeout: float | None = 600) -> CommandResult:
        proc = subprocess.run(["sh", "-c", command], input=input or b"", capture_output=True, timeout=timeout)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


class RemoteRunner:
    """A target bound to its transport: ``run(command, input=...)``."""

    def __init__(self, transport: SshTransport, target: SshTarget) -> None:
        self.transport = transport
        self.target = target

    def run(self, command: str, *, input: bytes | None = None, timeout: float | None = 600) -> CommandResult:
        return self.transport.run(self.target, command, input=input, timeout=timeout)
