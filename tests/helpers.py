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


def write_config(directory: Path, text: str, name: str = "dockyard.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
