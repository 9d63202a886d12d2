"""The app's environment on the server: the source of truth for secrets.

``/var/lib/dockyard/apps/<app>/env`` holds ``KEY=value`` lines in Docker's env-file format,
mode 0600. Values only ever travel over SSH's stdin and stdout, never in an argv; the file is
written to a temporary name, checked (length and end marker), then renamed, so a connection
cut mid-write leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import re

from dockyard import scripts, values
from dockyard.host.command import Answer, Command, Fact, fact
from dockyard.state import paths
from dockyard.state.files import write_files

#: Values shorter than this are not redacted from output (a secret "1" would mangle every
#: number printed); real secrets are longer.
MIN_REDACT = 4


def env_path(app: str) -> str:
    return f"{paths.app_dir(app)}/env.server"


class DotenvError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


_KEY_LINE = re.compile(r"^\s*(?:export\s+)?([^=\s]+)\s*=(.*)$")


def parse_dotenv(text: str) -> dict[str, str]:
    """Dotenv as people write it: ``KEY=value``, ``export KEY=value``, quotes removed
    (inside quotes ``=``, ``#`` and spaces are kept; double quotes understand \\n \\" \\\\),
    comments and blank lines ignored, ``KEY=`` is an empty value."""
    out: dict[str, str] = {}
    # split on "\n" only: str.splitlines() also splits on U+2028, \x0b, \x1c..., which would
    # turn the rest of a value into a key of its own (A=x<U+2028>PATH=/evil)
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEY_LINE.match(raw)
        if not match:
            raise DotenvError(number, f"expected KEY=value, got {_preview(line)}")
        key, rest = match.group(1), match.group(2).strip()
        try:
            values.env_key(key)
            out[key] = values.env_value(key, _value(rest, number))
        except ValueError as exc:
            raise DotenvError(number, str(exc)) from None
    return out


def _value(rest: str, number: int) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        i = 1
        chars = []
        while i < len(rest):
            c = rest[i]
            if quote == '"' and c == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                chars.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
                continue
            if c == quote:
                tail = rest[i + 1:].strip()
                if tail and not tail.startswith("#"):
                    raise DotenvError(number, "unexpected text after the closing quote")
                return "".join(chars)
            chars.append(c)
            i += 1
        raise DotenvError(number, f"unterminated {quote} quote")
    # unquoted: an inline comment starts at " #"
    value = re.split(r"\s+#", rest, maxsplit=1)[0]
    return value.strip()


def _preview(line: str) -> str:
    return values.shown(line, 24)


def check_value(key: str, value: str) -> None:
    """One value of one key: no NUL, nothing any reader counts as a line break."""
    values.env_value(key, value)


def format_env(values: dict[str, str]) -> str:
    """Docker's --env-file format: KEY=value, the value verbatim (no quotes)."""
    for key, value in values.items():
        check_value(key, value)
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()))


def parse_env_file(text: str) -> dict[str, str]:
    """Read what format_env wrote (verbatim values)."""
    out = {}
    for line in text.split("\n"):  # never splitlines(): see parse_dotenv
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            out[key] = value
    return out


def format_dotenv(values: dict[str, str]) -> str:
    """For ``env export``: quoted so any value reads back with parse_dotenv."""
    def quote(v: str) -> str:
        if v and re.fullmatch(r"[A-Za-z0-9_./:@%+,-]+", v):
            return v
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return "".join(f"{k}={quote(v)}\n" for k, v in sorted(values.items()))


def read(app: str) -> Fact[dict[str, str]]:
    return fact(["cat", "--", env_path(app)], lambda a: parse_env_file(a.out) if a.ok else {},
                f"read {app}'s environment (values stay in memory, never printed)")


def snapshot(app: str, release: int) -> Fact[tuple[dict[str, str], dict[str, str]] | None]:
    """The environment release N ran with: (everything it got, the server's part), None when
    it has no snapshot (releases made before snapshots existed)."""
    base = f"{paths.app_dir(app)}/env/v{release}"

    def parse(answer: Answer) -> tuple[dict[str, str], dict[str, str]] | None:
        if not answer.ok:
            return None
        merged, _, server = answer.out.partition("\0")
        return parse_env_file(merged), parse_env_file(server)

    return fact(scripts.inline("read-env", base), parse,
                f"the environment v{release} ran with (values stay in memory)")


#: The names (never the values) of the variables that are secrets, one per line, next to
#: env.server: `env list` masks those and shows the others. Missing on servers set up before
#: it existed: then every server variable counts as a secret.
SECRETS = "env.secrets"


def secret_keys(app: str) -> Fact[set[str] | None]:
    return fact(["cat", "--", f"{paths.app_dir(app)}/{SECRETS}"],
                lambda a: {k for k in a.out.split("\n") if k} if a.ok else None,
                f"which of {app}'s variables are secrets (names only)")


def secrets_after(before: set[str] | None, old: dict[str, str], new: dict[str, str],
                  secret: set[str], plain: set[str]) -> set[str]:
    """The secret names once ``new`` replaces ``old``: set as secrets (``secret``) or as
    plain values (``plain``), the others keep what they were (all of them were secrets on a
    server without the list)."""
    known = set(old) if before is None else before
    return {k for k in new if k in secret or (k in known and k not in plain)}


def files(values: dict[str, str], secrets: set[str]) -> dict[str, bytes]:
    """env.server and env.secrets, written together."""
    return {"env.server": format_env(values).encode(),
            SECRETS: "".join(f"{k}\n" for k in sorted(secrets & set(values))).encode()}


def write_command(app: str, values: dict[str, str], secrets: set[str]) -> Command:
    """Store the app's environment (0600), through stdin, replaced atomically."""
    return write_files(paths.app_dir(app), files(values, secrets),
                       f"store {app}'s environment on the server (0600, replaced atomically)",
                       label=f"<env file: {len(values)} keys, {len(secrets & set(values))} "
                       "of them secrets>")


def redactable(values: dict[str, str]) -> list[str]:
    return [v for v in values.values() if len(v) >= MIN_REDACT]
