"""Every command's help, rendered at 80 columns as a terminal shows it (issue 19: Rich markup
swallowed bracketed names, usage lines showed ``{name}``)."""

from __future__ import annotations

import ast
import re

from tests.helpers import REPO, cli

CLI = REPO / "src" / "dockyard" / "cli"
BRACKETED = re.compile(r"\[[a-z][a-zA-Z0-9_.]*\]")


def commands(path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, from the "Commands:" sections of the help itself."""
    out = [path]
    text = cli(*path, "--help", env={"COLUMNS": "80"}).stdout
    for marker in ("Commands:", "─ Commands ─"):  # plain, or Rich's panel
        if marker in text:
            for line in text.split(marker, 1)[1].splitlines():
                match = re.match(r"(?:  |│ )([a-z][a-z-]*)\s", line)
                if match:
                    out += commands((*path, match.group(1)))
    return out


def help_strings() -> list[str]:
    """The help texts written in the source: help= arguments and command docstrings."""
    found = []
    for file in CLI.glob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "help":
                found += [n.value for n in ast.walk(node.value)
                          if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            if isinstance(node, ast.FunctionDef) and ast.get_docstring(node):
                found.append(ast.get_docstring(node) or "")
    return found


def test_help_shows_bracketed_names_and_plain_argument_names() -> None:
    paths = commands()
    assert len(paths) > 40  # every command and group
    rendered = ""
    for path in paths:
        run = cli(*path, "--help", env={"COLUMNS": "80"})
        assert run.returncode == 0, (path, run.output)
        usage = run.stdout.splitlines()[0]
        assert usage.startswith("Usage: dockyard") and "{" not in usage, (path, usage)
        assert not re.search(r" [a-z_]+\.\.\.|\[[a-z_]+\]", usage.split("[OPTIONS]")[-1]), usage
        rendered += " " + " ".join(run.stdout.split())
    wanted = {name for text in help_strings() for name in BRACKETED.findall(text)}
    assert {"[proxy]", "[processes]", "[accessories.NAME]"} <= wanted
    missing = sorted(name for name in wanted if name not in rendered)
    assert not missing, f"bracketed names lost in the rendered help: {missing}"
