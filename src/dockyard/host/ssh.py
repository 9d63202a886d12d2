"""A server reached through the system OpenSSH client.

Why the system client and not a Python SSH library: it honours everything the person has
already set up (~/.ssh/config, ssh-agent, ProxyJump, hardware keys), and ControlMaster
multiplexing makes one TCP connection serve a whole dockyard command, so each extra command
costs a round trip, not a handshake.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from dockyard.errors import HostError
from dockyard.host import preconnect, sshopts
from dockyard.host.base import Completed, Host
from dockyard.host.spec import HostSpec


def dockyard_dir() -> Path:
    return sshopts.dockyard_dir()


def control_dir() -> Path:
    """A private 0700 directory for ControlMaster sockets: nobody else may reuse them."""
    try:
        return sshopts.control_dir()
    except sshopts.ControlDirError as exc:
        raise HostError("DY021", str(exc)) from None


class SshHost(Host):
    def __init__(self, spec: HostSpec, *, connect_timeout: float = 5.0,
                 persist: str = "60s") -> None:
        super().__init__(spec)
        self.connect_timeout = connect_timeout
        self.persist = persist
        if shutil.which("ssh") is None:
            raise HostError(
                "DY021", "the ssh command is not installed on this machine; install OpenSSH "
                "(apt-get install openssh-client)"
            )
        self._known_hosts = sshopts.known_hosts()
        self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
        self._claimed = False

    @property
    def destination(self) -> str:
        return f"{self.spec.user}@{self.spec.hostname}" if self.spec.user else self.spec.hostname

    def ssh_options(self) -> list[str]:
        control_dir()  # its ownership checked: DY021
        if not self._claimed:
            # the master the entry point started while Python imported Dockyard: wait for it
            self._claimed = True
            preconnect.claim(self.destination, self.spec.port,
                             timeout=max(10.0, 2 * self.connect_timeout + 5))
        return sshopts.options(self.spec.port, connect_timeout=self.connect_timeout,
                               persist=self.persist)

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        # The destination comes after "--", so ssh can never read it as an option (its
        # grammar is checked too); the remote side runs the string through the user's
        # shell, so every word is quoted.
        return ["ssh", *self.ssh_options(), "--", self.destination, shlex.join(argv)]

    def spawn_argv_tty(self, argv: Sequence[str], tty: bool) -> list[str]:
        flag = ["-t"] if tty else ["-T"]
        return ["ssh", *self.ssh_options(), *flag, "-o", "LogLevel=QUIET", "--",
                self.destination, shlex.join(argv)]

    def forward_argv(self, local: str, remote: str) -> list[str]:
        """Ask the running master to forward a local socket to a remote one."""
        return ["ssh", *self.ssh_options(), "-O", "forward", "-L", f"{local}:{remote}", "--",
                self.destination]

    def reverse_forward(self, local_port: int) -> int:
        """A loopback port on the server (OpenSSH picks it) forwarded to ``local_port`` on
        this machine's loopback, through the multiplexed connection: the server's port."""
        spec = f"127.0.0.1:0:127.0.0.1:{local_port}"
        argv = ["ssh", *self.ssh_options(), "-O", "forward", "-R", spec, "--", self.destination]
        proc = self._ask_master(argv)
        words = proc.stdout.decode(errors="replace").split()
        if proc.returncode == 0 and words and words[0].isdigit():
            return int(words[0])
        raise HostError("DY010", f"cannot forward a port from {self.label} back to this "
                        f"machine over SSH: {proc.stderr.decode(errors='replace').strip()}; "
                        "the server's sshd must allow TCP forwarding (AllowTcpForwarding yes, "
                        "the default)")

    def _ask_master(self, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        """A control request (``-O forward``) to this process's master; when it fails (no
        master yet), one is opened with a trivial command and the request made once more."""
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                              check=False)
        if proc.returncode != 0:
            self.execute(["true"])
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=30, check=False)
        return proc

    def local_forward(self, local_port: int, remote_port: int) -> None:
        """``local_port`` on this machine's loopback forwarded to ``remote_port`` on the
        server's loopback, through the multiplexed connection."""
        spec = f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"
        proc = self._ask_master(["ssh", *self.ssh_options(), "-O", "forward", "-L", spec,
                                 "--", self.destination])
        if proc.returncode != 0:
            raise HostError("DY010", f"cannot forward a port to {self.label} over SSH: "
                            f"{proc.stderr.decode(errors='replace').strip()}")

    def cancel_local_forward(self, local_port: int, remote_port: int) -> None:
        spec = f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"
        subprocess.run(["ssh", *self.ssh_options(), "-O", "cancel", "-L", spec, "--",
                        self.destination], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30, check=False)

    def cancel_reverse_forward(self, local_port: int) -> None:
        spec = f"127.0.0.1:0:127.0.0.1:{local_port}"
        subprocess.run(["ssh", *self.ssh_options(), "-O", "cancel", "-R", spec, "--",
                        self.destination], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30, check=False)

    def control_argv(self, command: str) -> list[str]:
        """A control command (``exit``, ``check``) for this process's master."""
        return ["ssh", *self.ssh_options(), "-O", command, "--", self.destination]

    def api_socket(self, remote_path: str) -> str:
        """Forward a local socket to ``remote_path`` through the multiplexed connection.

        OpenSSH's stream-local forwarding lets this laptop talk to a UNIX socket on the
        server with no socat or agent there; each request is a new channel on the existing
        connection (well under a millisecond here)."""
        key = hashlib.sha1(f"{self.destination}:{self.spec.port}:{remote_path}".encode())
        local = str(control_dir() / f"api-{os.getpid()}-{key.hexdigest()[:12]}.sock")
        forward = self.forward_argv(local, remote_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local)
        proc = self._ask_master(forward)
        if proc.returncode == 0:
            return local
        raise HostError("DY010", f"cannot forward the router's Runtime API socket over SSH to "
                        f"{self.label}: {proc.stderr.decode(errors='replace').strip()}; the "
                        "server's sshd must allow stream-local forwarding "
                        "(AllowStreamLocalForwarding yes, the default)")

    def check_transport(self, result: Completed) -> None:
        if result.returncode != 255:
            return
        err = result.err
        label = self.label
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in err or "Host key verification failed" in err:
            target = f"[{self.spec.hostname}]:{self.spec.port}" if self.spec.port else self.spec.hostname
            raise HostError(
                "DY011",
                f"the host key of {label} has changed; if the server was reinstalled, remove the "
                f"old key with: ssh-keygen -R '{target}' -f {self._known_hosts}",
                ["  otherwise someone may be intercepting the connection: do not continue"],
            )
        if "Permission denied" in err:
            raise HostError(
                "DY012",
                f"SSH login to {label} was refused; check the user in [server] host and that your "
                "key is loaded (ssh-add -l) and in the server's authorized_keys",
                [f"  ssh said: {_last_line(err)}"],
            )
        markers = ("Connection refused", "timed out", "No route to host", "Could not resolve",
                   "Network is unreachable", "Connection closed", "Connection reset",
                   "not known", "kex_exchange_identification")
        if any(m in err for m in markers) or not err.strip():
            raise HostError(
                "DY010",
                f"cannot reach {label} over SSH: {_last_line(err) or 'no answer'}; check the "
                "address and port in [server] host, and that sshd runs there",
            )

    def close(self) -> None:
        """Stop this process's multiplexing master and remove its forwarded socket. Not
        waited for: the master ends on its own, and this command need not wait for it (its
        remote sessions, the lock's included, are already closed)."""
        subprocess.Popen(
            self.control_argv("exit"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for stale in control_dir().glob(f"api-{os.getpid()}-*.sock"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
