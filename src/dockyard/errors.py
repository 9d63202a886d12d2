"""User-facing errors, each with a stable code.

Every error a person can meet carries a code from ``CODES`` so that the message, the docs
(``docs/troubleshooting.md``) and bug reports all name the same thing. The first line of
every message says what failed, where, and what to do next; ``details`` holds the rest
(at most a few lines), shown under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.values import printable

#: The registry: code -> (short title, exit code). Codes are never reused or renumbered.
CODES: dict[str, tuple[str, int]] = {
    "DY001": ("configuration file not found", 2),
    "DY002": ("configuration file is not valid TOML", 2),
    "DY003": ("configuration file has invalid values", 2),
    "DY004": ("file already exists", 2),
    "DY005": ("bad command-line usage", 2),
    "DY006": ("a file cannot be read", 2),
    "DY007": ("the compose file cannot be read", 2),
    "DY008": ("the compose file asks for what Dockyard cannot do", 2),
    "DY010": ("server unreachable", 1),
    "DY011": ("server host key changed", 1),
    "DY012": ("SSH authentication failed", 1),
    "DY013": ("Docker is not installed on the server", 1),
    "DY014": ("user cannot run docker on the server", 1),
    "DY015": ("server check found problems", 1),
    "DY016": ("cannot install Docker on this server", 1),
    "DY020": ("a command failed on the server", 1),
    "DY021": ("the local ssh client is missing", 1),
    "DY022": ("an image could not be pulled", 1),
    "DY023": ("Docker on this machine is missing or not running (local builder)", 1),
    "DY024": ("this machine cannot build for the server's platform", 1),
    "DY025": ("the local registry did not start", 1),
    "DY026": ("the server could not pull the image shipped from this machine", 1),
    "DY027": ("the registry password is not available on this machine", 2),
    "DY028": ("the registry refused the login", 1),
    "DY030": ("proxy settings differ from the server's", 2),
    "DY031": ("aborted by the user", 1),
    "DY040": ("the router refused a Runtime API command", 1),
    "DY041": ("lost the connection to the router's Runtime API", 1),
    "DY042": ("the router has no free slot for another app", 1),
    "DY043": ("a domain is already routed to another app", 1),
    "DY050": ("another deploy holds the app's lock", 1),
    "DY051": ("the new release never became healthy", 1),
    "DY052": ("the release command failed", 1),
    "DY053": ("a process of the new release did not stay up", 1),
    "DY054": ("no such release", 2),
    "DY055": ("the app has not been deployed yet", 1),
    "DY056": ("the image build failed", 1),
    "DY057": ("no such process", 2),
    "DY058": ("a scheduled job could not run now", 1),
    "DY060": ("no such accessory", 2),
    "DY061": ("an accessory did not become ready", 1),
    "DY062": ("a secret an accessory needs is not set", 1),
    "DY063": ("accessory upgrade refused", 1),
    "DY064": ("a backup failed", 1),
    "DY065": ("no such backup", 2),
    "DY066": ("a restore failed", 1),
    "DY067": ("a backup's checksum does not match", 1),
    "DY068": ("a backup file does not fit the accessory", 2),
    "DY069": ("the tools image cannot take scheduled backups", 1),
    "DY070": ("a certificate could not be obtained", 1),
    "DY080": ("no such host in [server] hosts", 2),
    "DY081": ("cluster commands need several [server] hosts", 2),
    "DY082": ("the hosts cannot form one swarm as they are", 1),
    "DY083": ("no reachable swarm manager", 1),
    "DY084": ("the host is not a node of the swarm", 1),
    "DY085": ("tasks did not move off a node", 1),
    "DY086": ("the app's network is not an overlay network", 1),
    "DY087": ("the first host cannot be removed from the cluster", 2),
    "DY088": ("apps still run on the swarm", 1),
    "DY099": ("an internal error (a bug in Dockyard)", 70),
}


@dataclass
class DockyardError(Exception):
    """An error meant for a person: one actionable line plus optional details."""

    code: str
    message: str
    details: list[str] | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered error code {self.code}")
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return CODES[self.code][1]

    def lines(self) -> list[str]:
        """What the person sees: control characters from values (an ESC sequence, a line
        separator) are escaped, so a message is exactly as many lines as it says."""
        return [printable(f"error[{self.code}]: {self.message}"),
                *(printable(line) for line in self.details or [])]


class ConfigError(DockyardError):
    """dockyard.toml is missing, unreadable or invalid."""


class HostError(DockyardError):
    """The server cannot be reached or used."""


class CommandFailed(DockyardError):
    """A command run by the runner exited non-zero.

    Keeps the argv (already redacted), exit code and the tail of stderr so the person sees
    exactly what failed without re-running with ``-v``.
    """

    def __init__(self, command: str, exit_code: int, stderr_tail: str, host: str,
                 stdout: str = "") -> None:
        tail = [f"  {line}" for line in stderr_tail.strip().splitlines()[-6:]]
        shown = command if len(command) <= 300 else command[:297] + "…"
        super().__init__(
            "DY020",
            f"command failed on {host} (exit {exit_code}): {shown}",
            tail or None,
        )
        self.command = command
        self.returncode = exit_code
        self.stderr_tail = stderr_tail
        #: what it printed (a write that lost a race prints what it found instead)
        self.stdout = stdout


def registry_of(image: str) -> str:
    """Where Docker pulls ``image`` from, as a person names it."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "Docker Hub (docker.io)"


class PullFailed(CommandFailed):
    """``docker pull`` failed: which image, from which registry, and what to check, instead
    of Docker's own words alone (they stay, as details)."""

    def __init__(self, image: str, command: str, exit_code: int, stderr_tail: str,
                 host: str) -> None:
        super().__init__(command, exit_code, stderr_tail, host)
        registry = registry_of(image)
        self.code = "DY022"
        self.message = (
            f"{image} could not be pulled from {registry} on {host}: check the image name and "
            f"tag (spelling, does that tag exist?), that the server reaches {registry}, and "
            "for a private image a [registry] section (the server logs in for the pull: "
            "docs/config.md) or `docker login` on the server (Docker's own words below)")


def failed(argv: list[str], command: str, exit_code: int, stderr_tail: str, host: str,
           stdout: str = "") -> CommandFailed:
    """The error for a command that failed: a pull says what to check."""
    if argv[:2] == ["docker", "pull"] and len(argv) >= 3:
        return PullFailed(argv[-1], command, exit_code, stderr_tail, host)
    return CommandFailed(command, exit_code, stderr_tail, host, stdout)
