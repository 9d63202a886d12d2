"""Shared test helpers: run the real `dockyard` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def dockyard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             input: str | None = None, timeout: float = 120) -> Run:
    import time

    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        cwd=cwd, env=full_env, input=input, capture_output=True, text=True, timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        input: str | None = None) -> Run:
    """The CLI in this process (unit tests: no interpreter start per case); the same output
    and exit code as `dockyard` in a subprocess. e2e tests use dockyard() instead."""
    import contextlib
    import io
    import time

    from dockyard.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_stdin = sys.stdin
    os.environ.update({"COLUMNS": "200", **(env or {})})
    sys.stdin = io.StringIO(input or "")
    started = time.monotonic()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
    return Run(code, out.getvalue(), err.getvalue(), time.monotonic() - started)


def write_config(directory: Path, text: str, name: str = "dockyard.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
