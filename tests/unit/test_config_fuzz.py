"""A fuzz of dockyard.toml (hypothesis): valid files from the config strategy, then mutated
(values replaced by values of other types and absurd ones, keys deleted, added and renamed,
bytes flipped, invalid UTF-8, deep nesting). Every file either loads or gives one ConfigError
whose first line names the file and the key or line; never another exception, never a hang.

Small counts in CI (DOCKYARD_FUZZ_EXAMPLES); bench/fuzz runs 2,000+ files with a seed.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from dockyard.config.loader import load_config
from dockyard.errors import ConfigError
from tests.strategies import FUZZ, any_text, configs

#: Values a careless or hostile file puts anywhere.
ODD_VALUES = st.one_of(
    any_text, st.integers(), st.integers(-(10 ** 80), 10 ** 80), st.floats(), st.booleans(),
    st.sampled_from(["inf", "nan", "1" * 400, "\u0661\u0662s", "0", "-1s", "1e308", "\x1b[31m", "a\nb",
                     "--privileged", "ssh://-oProxyCommand=x@h", "", " ", "\u2028", "99 99 99 99 99",
                     "../../etc/passwd", "postgres:16\n", 10 ** 77, 2 ** 31, 0, -1, 1.5e308]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append((*prefix, key))
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.append((*prefix, i))
            out += _paths(value, (*prefix, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(configs())
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        action = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(ODD_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
    try:
        text = tomli_w.dumps(data).encode()
    except (TypeError, ValueError):  # a value TOML cannot hold (None in a list...)
        text = b'[app]\nname = "x"\n'
    kind = draw(st.sampled_from(["as is", "as is", "bytes", "utf8", "nesting", "truncate"]))
    if kind == "bytes" and text:
        for _ in range(draw(st.integers(1, 5))):
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + bytes([draw(st.integers(0, 255))]) + text[i + 1:]
    elif kind == "utf8":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80"])) + text[i:]
    elif kind == "nesting":
        depth = draw(st.integers(100, 3000))
        inner = draw(st.sampled_from([("[" * depth + "]" * depth),
                                      ("{a=" * (depth // 4) + "1" + "}" * (depth // 4))]))
        text += f"\n[extra]\nx = {inner}\n".encode()
    elif kind == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return text


def check_file(path: Path) -> str:
    """Load one file; returns "ok" or the error code. Fails on anything else."""
    started = time.monotonic()
    try:
        load_config(path)
        outcome = "ok"
    except ConfigError as exc:
        first = exc.lines()[0]
        assert first.startswith(f"error[{exc.code}]: {path}"), first
        rest = first[len(f"error[{exc.code}]: {path}"):]
        assert re.match(r" line [0-9]+|: line [0-9]+|: [A-Za-z_\"\[]", rest), first
        assert "\x1b" not in "\n".join(exc.lines())
        assert len(exc.lines()) <= 8
        outcome = exc.code
    took = time.monotonic() - started
    assert took < 10, f"{path} took {took:.1f}s to load: a hang"
    return outcome


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


@FUZZ
@given(text=mutated())
def test_any_file_loads_or_is_one_precise_error(workdir: Path, text: bytes) -> None:
    path = workdir / "dockyard.toml"
    path.write_bytes(text)
    check_file(path)
