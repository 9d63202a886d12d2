"""Every kind of value that reaches Dockyard from outside, with its one grammar.

A `dockyard.toml` comes from a repository, an env value from a paste, a backup id from a
terminal: any of them can be wrong, and some can be hostile. Each kind of value is checked
here, by one function, wherever it enters (the config models, the CLI arguments) so that
what passes is safe everywhere it goes later: in an argv, in a Runtime API line, in a file
name on the server, in an error message.

Rules that hold for every grammar here:

- full matches only (``re.fullmatch``): ``$`` would accept a trailing newline;
- ASCII digits and letters only (``[0-9]``, never ``\\d`` or ``str.isdigit``, which accept
  Arabic-Indic digits and superscripts);
- bounded lengths, checked before any conversion, so no value can make int() or a regex work
  for long;
- each function raises ``ValueError`` with one sentence: what is wrong and what to write.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

# -- shown in messages ---------------------------------------------------------------------


class LocatedError(ValueError):
    """A ValueError about a key below the field being validated (``where``: the path under
    it), so the message can name that key and its line, e.g. ``accessories.db``."""

    def __init__(self, where: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.where = where


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with every control character escaped (\\x1b, \\n, \\u2028): safe to print
    as one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: control characters escaped (an ESC from a
    hostile file must not recolour the terminal, a newline must not forge a second line),
    long values cut."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = printable(text)
    return f'"{text}"' if isinstance(value, str) else text


# -- names -----------------------------------------------------------------------------------

_APP = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
_PROCESS = re.compile(r"[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?")
_RESERVED_ACCESSORIES = ("web", "release", "run", "cron")


def app_name(text: str) -> str:
    """It names a Docker network, the image repository ``dockyard/<app>`` and every
    container: lowercase, starting with a letter, not ending with a dash (an image path
    component cannot), at most 40."""
    if not isinstance(text, str) or not _APP.fullmatch(text):
        raise ValueError(f"{shown(text)} is not a valid app name; use lowercase letters, digits "
                         'and dashes, starting with a letter and not ending with a dash, at most '
                         '40 characters, e.g. "hello" or "my-blog"')
    return text


def process_name(text: str) -> str:
    if not isinstance(text, str) or not _PROCESS.fullmatch(text):
        raise ValueError(f"{shown(text)} is not a valid process name; use lowercase letters, "
                         "digits and dashes, starting with a letter and not ending with a dash, "
                         'at most 30 characters, e.g. "worker"')
    if text == "web":
        raise ValueError('"web" is the routed process; configure it under [web]')
    return text


def accessory_name(text: str) -> str:
    """Also the accessory's name on the app's network (a DNS label)."""
    if not isinstance(text, str) or not _PROCESS.fullmatch(text) or text in _RESERVED_ACCESSORIES:
        raise ValueError(f"{shown(text)} is not a valid accessory name; use lowercase letters, "
                         "digits and dashes, starting with a letter, not ending with a dash (not "
                         'web, release, run or cron), e.g. "db"')
    return text


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}")


def domain(text: str) -> str:
    """A host name as the router matches it: lowercase labels, an optional leading ``*.``."""
    if not isinstance(text, str) or len(text) > 253 or not _DOMAIN.fullmatch(text):
        raise ValueError(f"{shown(text)} is not a host name; write e.g. \"blog.example.com\" "
                         "(lowercase, no scheme, no port, no path)")
    return text


# -- environment ---------------------------------------------------------------------------

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
#: What str.splitlines() splits on, and NUL: a value holding one would read back as two
#: lines, i.e. as another key (PATH=...), or cut an argv.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}\x00]")


def env_key(text: str) -> str:
    if not isinstance(text, str) or not _ENV_KEY.fullmatch(text):
        raise ValueError(f"{shown(text)} is not a valid variable name; use letters, digits and "
                         "underscores, not starting with a digit")
    return text


def env_value(key: str, value: str) -> str:
    """One line of an env file: no NUL, no character any reader counts as a line break."""
    found = _BREAK.search(value)
    if found:
        char = found.group()
        what = "a NUL byte" if char == "\0" else (
            "a newline" if char in "\r\n" else f"a line separator ({shown(char)[1:-1]})")
        raise ValueError(f"{key}: the value contains {what}, which an env file cannot carry "
                         "in one value; store it base64-encoded, or as a file")
    return value


def argv_word(text: str) -> str:
    """Anything that becomes one word of an argv: no NUL (no argv can carry it)."""
    if "\0" in text:
        raise ValueError(f"{shown(text)} contains a NUL byte, which no command can carry")
    return text


# -- images -----------------------------------------------------------------------------------
# Docker's reference grammar (distribution/reference): [host[:port]/]path[:tag][@digest]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = (rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
             r"(?::[0-9]{1,5})?")
_IMAGE = re.compile(
    rf"(?:(?P<registry>{_REGISTRY})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?")


def image_ref(text: str) -> str:
    """An image reference as Docker accepts it (so never an option such as --privileged)."""
    if not isinstance(text, str) or len(text) > 512:
        raise ValueError(f"{shown(text)} is not an image reference; write e.g. \"postgres:16\" "
                         'or "ghcr.io/me/app:1.4"')
    match = _IMAGE.fullmatch(text)
    name_len = len(text.split("@")[0].rsplit(":", 1)[0]) if match else 0
    if match is None or name_len > 255:
        raise ValueError(f"{shown(text)} is not an image reference; write e.g. \"postgres:16\" "
                         'or "ghcr.io/me/app:1.4" (lowercase name, optional :tag)')
    registry = match.group("registry")
    if registry and "." not in registry and ":" not in registry and registry != "localhost" \
            and not re.fullmatch(_COMPONENT, registry):
        # Docker reads "Me/app" as the path Me/app on Docker Hub (a registry needs a dot, a
        # port or "localhost"), and paths are lowercase
        raise ValueError(f"{shown(text)} is not an image reference: repository names are "
                         'lowercase; write e.g. "me/app:1.4"')
    return text


def registry_host(text: str) -> str:
    """A registry's host with an optional port ("ghcr.io", "127.0.0.1:5000"): what
    ``docker login`` takes and an image reference starts with."""
    if not isinstance(text, str) or not re.fullmatch(_REGISTRY, text):
        raise ValueError(f"{shown(text)} is not a registry host; write e.g. \"ghcr.io\" or "
                         '"registry.example.com:5000" (no https://, no path)')
    return text


def image_registry(text: str) -> str:
    """The registry an image reference names, "docker.io" when it names none (Docker's rule:
    a first component with a dot, a port or "localhost" is a registry)."""
    match = _IMAGE.fullmatch(text)
    registry = match.group("registry") if match else None
    if registry and ("." in registry or ":" in registry or registry == "localhost"):
        return registry
    return "docker.io"


def image_repository(text: str) -> str:
    """The repository part of an image reference ("postgres" of "docker.io/library/postgres:16"),
    lowercase: what a type is detected from."""
    match = _IMAGE.fullmatch(text)
    path = match.group("path") if match else text
    return path.rsplit("/", 1)[-1]


# -- numbers ----------------------------------------------------------------------------------

_PORT = re.compile(r"[0-9]{1,5}")


def port(value: Any) -> int:
    """A TCP port, 1 to 65535, from an integer or ASCII digits."""
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not a port; write a number from 1 to 65535")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _PORT.fullmatch(value):
        number = int(value)
    else:
        raise ValueError(f"{shown(value)} is not a port; write a number from 1 to 65535")
    if not 1 <= number <= 65535:
        raise ValueError(f"{number} is not a port; write a number from 1 to 65535")
    return number


_RELEASE = re.compile(r"v?([0-9]{1,9})")


def release_number(text: str) -> int:
    """``v3`` or ``3``: a release of the app."""
    match = _RELEASE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"{shown(text)} is not a release; write e.g. v3 (see: dockyard "
                         "releases)")
    return int(match.group(1))


# -- backups ----------------------------------------------------------------------------------

BACKUP_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[a-z]+(?:-[a-z]+)*")
BACKUP_FILE = re.compile(rf"(?P<id>{BACKUP_ID.pattern})\.(?P<ext>pgdump|rdb|tar)")


def backup_id(text: str) -> str:
    """A backup's id (``20261201T222717Z-manual``) or file name (``….pgdump``): never a path."""
    if not isinstance(text, str) or not (BACKUP_ID.fullmatch(text) or BACKUP_FILE.fullmatch(text)):
        raise ValueError(f"{shown(text)} is not a backup id; ids look like "
                         "20261201T222717Z-manual (see: dockyard backups NAME)")
    return text


def timezone(text: object) -> str:
    """An IANA time zone name ("Europe/Paris", "UTC") this machine knows."""
    import zoneinfo

    if not isinstance(text, str) or text not in zoneinfo.available_timezones() | {"UTC"}:
        raise ValueError(f"{shown(text)} is not a time zone; write an IANA name such as "
                         '"Europe/Paris" or "UTC"')
    return text


# -- destinations -----------------------------------------------------------------------------

_DESTINATION = re.compile(r"[a-z](?:[a-z0-9-]{0,18}[a-z0-9])?")


def destination(text: str) -> str:
    """A destination (``-d staging``): it names a file and suffixes the app's name."""
    if not _DESTINATION.fullmatch(text):
        raise ValueError("not a destination name; use lowercase letters, digits and dashes, "
                         'at most 20, e.g. "staging"')
    return text


# -- resources --------------------------------------------------------------------------------

_MEMORY = re.compile(r"([1-9][0-9]{0,9})([kmg])")
_MEMORY_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def memory(value: object) -> str:
    """A memory limit as Docker reads it ("512m", "2g"): at least 6m, Docker's own minimum."""
    text = value.strip().lower() if isinstance(value, str) else ""
    m = _MEMORY.fullmatch(text.removesuffix("b") if text.endswith(("kb", "mb", "gb")) else text)
    if m is None:
        raise ValueError(f"{shown(value)} is not a memory size; write a number and a unit "
                         'k, m or g, e.g. "512m" or "2g"')
    if int(m.group(1)) * _MEMORY_UNITS[m.group(2)] < 6 << 20:
        raise ValueError(f"{shown(value)} is below Docker's minimum of 6m; write e.g. \"256m\"")
    return f"{m.group(1)}{m.group(2)}"


def cpus(value: object) -> float:
    """A CPU limit: a share of cores, 0.01 to 256 ("0.5" is half a core)."""
    try:
        number = float(value) if isinstance(value, int | float | str) and \
            not isinstance(value, bool) else -1.0
    except ValueError:
        number = -1.0
    if not 0.01 <= number <= 256:
        raise ValueError(f"{shown(value)} is not a CPU limit; write a number of cores from "
                         "0.01 to 256, e.g. 0.5 (half a core) or 2")
    return round(number, 2)


def limits(memory_limit: str | None, cpu_limit: float | None, *, swarm: bool = False) -> list[str]:
    """Docker's options for the limits (``docker run``, or ``docker service create``)."""
    out = []
    if memory_limit:
        # no swap beyond the limit: the limit is the memory the container gets
        out += [f"--limit-memory={memory_limit}"] if swarm else [
            f"--memory={memory_limit}", f"--memory-swap={memory_limit}"]
    if cpu_limit:
        out.append(f"--limit-cpu={cpu_limit:g}" if swarm else f"--cpus={cpu_limit:g}")
    return out


# -- cron -------------------------------------------------------------------------------------

SCHEDULE_WORDS = {"hourly": "0 * * * *", "daily": "0 3 * * *", "weekly": "0 3 * * 0",
                  "monthly": "0 3 1 * *", "yearly": "0 3 1 1 *"}
#: (name, lowest, highest) of the five fields, as cron reads them
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
               ("weekday", 0, 7))
_CRON_ITEM = re.compile(r"(?:\*|(?P<a>[0-9]{1,2})(?:-(?P<b>[0-9]{1,2}))?)(?:/(?P<step>[0-9]{1,2}))?")


def cron_schedule(value: str) -> str:
    """Five cron fields, each within its range (busybox crond silently never runs a line
    with 99 in it), or hourly/daily/weekly."""
    accepted = ('write hourly, daily, weekly, monthly, yearly, or five cron fields such as '
                '"30 2 * * *" (minute hour day month weekday)')
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"{shown(value)} is not a schedule; {accepted}")
    word = value.strip().lstrip("@")
    if word in SCHEDULE_WORDS:
        return SCHEDULE_WORDS[word]
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{shown(value)} is not a schedule; {accepted}")
    for text, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        for item in text.split(","):
            m = _CRON_ITEM.fullmatch(item)
            numbers = [int(n) for n in (m.group("a"), m.group("b")) if n] if m else []
            step = int(m.group("step")) if m and m.group("step") else None
            if m is None or any(not low <= n <= high for n in numbers) or step == 0 or (
                    len(numbers) == 2 and numbers[0] > numbers[1]):
                raise ValueError(f"{shown(value)}: the {name} field {shown(text)} is not valid "
                                 f"(numbers {low}-{high}, *, a-b, */n, lists with commas); "
                                 f"{accepted}")
    return " ".join(fields)


# -- hosts ------------------------------------------------------------------------------------

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def ssh_user(text: str) -> str:
    if not _USER.fullmatch(text):
        raise ValueError(f"the user {shown(text)} is not a user name; write lowercase letters, "
                         "digits, _ and -, starting with a letter or _")
    return text


def hostname(text: str) -> str:
    """A DNS name or ~/.ssh/config alias, an IPv4 literal, or an IPv6 literal (no brackets
    here). Never starts with a dash, never holds shell or ssh syntax."""
    if len(text) > 253:
        raise ValueError(f"{shown(text)} is too long for a host name")
    if ":" in text:
        address, _, scope = text.partition("%")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"{shown(text)} is not an IPv6 address") from None
        if scope and not _SCOPE.fullmatch(scope):
            raise ValueError(f"{shown(text)} has an invalid IPv6 zone") from None
        return text
    if text.startswith("-") or not _HOSTNAME.fullmatch(text):
        raise ValueError(f"{shown(text)} is not a host name or address")
    return text


# -- pydantic types -------------------------------------------------------------------------


def _str_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError('write text in quotes, e.g. "value"')
    return value


AppName = Annotated[str, BeforeValidator(_str_only), AfterValidator(app_name)]
ProcessName = Annotated[str, BeforeValidator(_str_only), AfterValidator(process_name)]
AccessoryName = Annotated[str, BeforeValidator(_str_only), AfterValidator(accessory_name)]
Domain = Annotated[str, BeforeValidator(_str_only), AfterValidator(domain)]
EnvKey = Annotated[str, BeforeValidator(_str_only), AfterValidator(env_key)]
ImageRef = Annotated[str, BeforeValidator(_str_only), AfterValidator(image_ref)]
Memory = Annotated[str, BeforeValidator(memory)]
Cpus = Annotated[float, BeforeValidator(cpus)]
CronSchedule = Annotated[str, BeforeValidator(_str_only), AfterValidator(cron_schedule)]
RegistryHost = Annotated[str, BeforeValidator(_str_only), AfterValidator(registry_host)]
ArgvWord = Annotated[str, AfterValidator(argv_word)]
