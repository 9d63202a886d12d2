"""A fuzz of every command's arguments (hypothesis), the server a closed port.

For each generated command line, an oracle made from the same grammars says whether the
config and the arguments alone can tell it is wrong. Then:

- never a traceback, never DY099 (an internal error), always one coded first line;
- wrong arguments get their own code (DY005, DY057, DY060, ...) before any connection;
- right ones reach the server, i.e. get DY010 from the closed port.

In-process (dockyard.cli.main.main), so hundreds of cases take seconds. Small counts in CI
(DOCKYARD_FUZZ_EXAMPLES); bench/fuzz runs large ones.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard import values
from dockyard.cli.main import main
from tests.strategies import FUZZ

CLOSED = "ssh://root@127.0.0.1:1"
CONFIG = f"""[app]
name = "fuzz"
[server]
host = "{CLOSED}"
connect_timeout = "2s"
[processes]
worker = ["sleep", "1"]
[accessories.db]
image = "postgres:16"
"""
PROCESSES = {"web", "worker"}
ACCESSORIES = {"db"}

#: Words people type, and words that break parsers ("--" ends options: the word after it is
#: a different command line, tested by test_cli's hoisting tests).
WORDS = st.one_of(
    st.sampled_from(["", "-", "-5", "0", "1", "v0", "v1", "v3", "²", "v" + "9" * 30,
                     "../../etc/passwd", "web", "worker", "db", "nope", "a.test", "A=1", "A",
                     "A=", "=x", "A=x\u2028PATH=/evil", "A=\x1b[31m", "20261201T000000Z-manual",
                     "20261201T000000Z-manual.pgdump", "20261201T000000Z-manual/../x",
                     "Ünïcode", "*.a.test", "a..test", "A-B=1", "-n", "--yes", "x" * 300]),
    st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
            max_size=20),
).filter(lambda word: word != "--")
NUMBERS = st.one_of(st.integers(-10, 10), st.sampled_from([100_000, 100_001, 1_000_000,
                                                           1_000_001]),
                    st.integers(-(10 ** 30), 10 ** 30)).map(str)


def ok(check: Callable[[Any], Any], value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def positional(word: str) -> bool:
    """Click reads a word starting with "-" as an option (one alone is a positional)."""
    return not (word.startswith("-") and word != "-")


def lines_ok(text: str, most: int) -> bool:
    return bool(re.fullmatch(r"[0-9]{1,7}", text)) and 1 <= int(text) <= most


@dataclass
class Case:
    argv: list[str]
    valid: bool
    stdin: str = ""


@st.composite
def cases(draw: st.DrawFn) -> Case:
    word = draw(WORDS)
    number = draw(NUMBERS)
    kind = draw(st.sampled_from([
        "rollback", "logs", "history", "exec", "env set", "env set stdin", "env unset",
        "domains add", "domains remove", "certs renew", "backup", "backups", "accessory",
        "restore", "restore file", "plain", "run", "accessory exec"]))
    if kind == "rollback":
        return Case(["rollback", word], positional(word) and ok(values.release_number, word))
    if kind == "logs":
        return Case(["logs", word, "-n", number],
                    positional(word) and word in PROCESSES and lines_ok(number, 1_000_000))
    if kind == "history":
        return Case(["history", "-n", number], lines_ok(number, 100_000))
    if kind == "exec":
        return Case(["exec", word, "--", "ls"], positional(word) and word in PROCESSES)
    if kind == "env set":
        key, _, value = word.partition("=")
        valid = (positional(word) and "=" in word and ok(values.env_key, key)
                 and ok(lambda v: values.env_value(key, v), value))
        return Case(["env", "set", word], valid)
    if kind == "env set stdin":
        value = draw(WORDS)
        valid = positional(word) and ok(values.env_key, word) and ok(
            lambda v: values.env_value(word, v), value.removesuffix("\n").removesuffix("\r"))
        return Case(["env", "set", word, "-"], valid and "=" not in word, stdin=value)
    if kind == "env unset":
        return Case(["env", "unset", word], positional(word) and ok(values.env_key, word))
    if kind in ("domains add", "domains remove", "certs renew"):
        return Case([*kind.split(), word], positional(word) and ok(values.domain, word))
    if kind in ("backup", "backups"):
        return Case([kind, word], positional(word) and word in ACCESSORIES)
    if kind == "accessory":
        verb = draw(st.sampled_from(["boot", "start", "stop", "restart", "logs", "upgrade"]))
        return Case(["accessory", verb, word], positional(word) and word in ACCESSORIES)
    if kind == "restore":
        name = draw(st.sampled_from(["db", "nope", word]))
        return Case(["restore", name, word, "--yes"],
                    positional(word) and positional(name) and name in ACCESSORIES
                    and ok(values.backup_id, word))
    if kind == "restore file":
        return Case(["restore", "db", "--from-file", f"/nonexistent/{word}", "--yes"], False)
    if kind == "accessory exec":
        return Case(["accessory", "exec", word, "--", "ls"], positional(word) and
                    word in ACCESSORIES)
    if kind == "run":
        return Case(["run", "--", word or "true"], True)
    command = draw(st.sampled_from([["deploy"], ["restart"], ["status"], ["releases"],
                                    ["lock", "status"], ["domains", "list"],
                                    ["server", "check"], ["remove", "--yes"]]))
    return Case(command, True)


def run_cli(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "dockyard.toml"
    path.write_text(CONFIG)
    (path.parent / "Dockerfile").write_text("FROM scratch\n")
    return path


@FUZZ
@given(case=cases())
def test_every_command_line_gets_one_coded_line_and_the_right_code(config_file: Path,
                                                                  case: Case) -> None:
    code, out, err = run_cli(["-c", str(config_file), *case.argv], case.stdin)
    assert "Traceback" not in out + err, (case, err)
    assert code != 0, (case, out, err)
    first = err.splitlines()[0] if err else ""
    found = re.match(r"error\[(DY[0-9]{3})\]: ", first)
    assert found, (case, err[:300])
    assert found.group(1) != "DY099", (case, first)
    assert "\x1b" not in err and "\u2028" not in err, (case, err)
    if case.valid:
        assert found.group(1) == "DY010", (case, first)
    else:
        assert found.group(1) != "DY010", f"checked only after connecting: {case} {first}"


def test_the_oracle_sees_both_sides(config_file: Path) -> None:
    """Guards the fuzz itself: a valid and an invalid case of each kind behave as said."""
    for case in (Case(["rollback", "v2"], True), Case(["rollback", "v0"], False),
                 Case(["logs", "worker", "-n", "5"], True), Case(["logs", "x", "-n", "5"], False),
                 Case(["env", "set", "A=1"], True), Case(["env", "set", "1A=1"], False),
                 Case(["restore", "db", "20261201T000000Z-manual", "--yes"], True),
                 Case(["restore", "db", "../x", "--yes"], False)):
        _, _, err = run_cli(["-c", str(config_file), *case.argv])
        assert err.startswith("error[DY010]") == case.valid, (case, err)
