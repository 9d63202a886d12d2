"""Dotenv parsing and the env file format (pure)."""

from __future__ import annotations

import pytest

from dockyard.state.env import (
    DotenvError,
    format_dotenv,
    format_env,
    parse_dotenv,
    parse_env_file,
    write_command,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("export A=1", {"A": "1"}),
        ("A = spaced ", {"A": "spaced"}),
        ('A="with spaces = and # hash"', {"A": "with spaces = and # hash"}),
        ("A='single # quoted = '", {"A": "single # quoted = "}),
        ("A=value # a comment", {"A": "value"}),
        ("A=url#fragment", {"A": "url#fragment"}),
        ("A=", {"A": ""}),
        ('A=""', {"A": ""}),
        ("A=b=c=d", {"A": "b=c=d"}),
        ('A="tab\\tin \\"q\\" back\\\\slash"', {"A": 'tab\tin "q" back\\slash'}),
        ("# comment\n\nA=1\nB=2\n", {"A": "1", "B": "2"}),
        ("A=1\nA=2", {"A": "2"}),
    ],
)
def test_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('A=1\nB="unterminated\n', 2, "unterminated"),
        ("A=1\n\n1BAD=x\n", 3, "not a valid variable name"),
        ("A=1\njust words\n", 2, "expected KEY=value"),
        ('A="x" trailing\n', 1, "after the closing quote"),
        ("BAD-KEY=1", 1, "not a valid variable name"),
        # a value with a line break cannot live in an env file: refused with its line
        ('A=1\nB="line\\nbreak"\n', 2, "newline"),
    ],
)
def test_dotenv_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text)
    assert info.value.line == line and words in str(info.value)
    assert str(info.value).startswith(f"line {line}:")


def test_env_file_round_trip_and_newlines_refused() -> None:
    values = {"B": "x y = # z", "A": "", "C": "'quoted'"}
    text = format_env(values)
    assert text == "A=\nB=x y = # z\nC='quoted'\n"
    assert parse_env_file(text) == values
    with pytest.raises(ValueError, match="newline"):
        format_env({"K": "a\nb"})


def test_export_reads_back() -> None:
    values = {"A": "plain", "B": "with space", "C": 'q"uote', "D": "", "E": "x#y"}
    assert parse_dotenv(format_dotenv(values)) == values


def test_values_never_in_argv() -> None:
    cmd = write_command("hello", {"TOKEN": "very-secret-value"}, {"TOKEN"})
    assert "very-secret-value" not in " ".join(cmd.argv)
    assert cmd.stdin is not None and b"very-secret-value" in cmd.stdin
    assert "very-secret-value" not in cmd.line and cmd.line.endswith("<env file: 1 keys, 1 of them secrets>")




# -- which values are secrets (issue 19, item 9) ------------------------------------------------

def test_secrets_stay_secrets_and_plain_values_show() -> None:
    from dockyard.cli.env_cmd import MASK, env_rows
    from dockyard.state.env import secrets_after

    old = {"TOKEN": "t", "GREETING": "hi"}
    # a server without the list: everything it had counts as a secret
    assert secrets_after(None, old, {**old, "NEW": "x"}, set(), {"NEW"}) == {"TOKEN", "GREETING"}
    # KEY=VALUE makes a plain value, KEY - (stdin) or --secret a secret; unset drops the name
    assert secrets_after({"TOKEN"}, old, {**old, "GREETING": "hello"}, set(),
                         {"GREETING"}) == {"TOKEN"}
    assert secrets_after({"TOKEN"}, old, {"GREETING": "hi", "DB": "u"}, {"DB"},
                         set()) == {"DB"}
    rows = {r["key"]: r["value"] for r in env_rows(
        {"TOKEN": "t", "GREETING": "hi"}, {"PORT": "80"}, {"TOKEN"}, reveal=False)}
    assert rows == {"TOKEN": MASK, "GREETING": "hi", "PORT": "80"}
    revealed = env_rows({"TOKEN": "t"}, {}, {"TOKEN"}, reveal=True)
    assert revealed[0]["value"] == "t"
