"""Building the image on the server: the build context travels as a tar over the SSH
connection into ``docker build -`` there. No registry, no Docker on the laptop.

The context honours .dockerignore (Docker's rules: patterns relative to the context, ``**``,
``!`` exceptions, the last matching line wins).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dockyard import scripts
from dockyard.errors import ConfigError
from dockyard.host.command import Command, change
from dockyard.values import printable


def _translate(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over '/'-separated paths (Go filepath.Match + **)."""
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(c)
            else:
                out += fnmatch.translate(pattern[i:end + 1])[4:-3]
                i = end
        else:
            out += re.escape(c)
        i += 1
    # a pattern matching a directory excludes everything below it
    return re.compile(f"^{out}(?:/.*)?$")


@dataclass
class IgnoreRules:
    rules: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def read(cls, context: Path) -> IgnoreRules:
        path = context / ".dockerignore"
        rules: list[tuple[bool, re.Pattern[str]]] = []
        if path.exists():
            for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                negate = line.startswith("!")
                if negate:
                    line = line[1:].strip()
                line = os.path.normpath(line).replace(os.sep, "/")
                if line in (".", ""):
                    continue
                rules.append((negate, _translate(line)))
        return cls(rules)

    def excluded(self, relpath: str) -> bool:
        result = False
        for negate, regex in self.rules:
            if regex.match(relpath):
                result = not negate
        return result


def check_context(context: Path, dockerfile: str) -> None:
    """The build context and its Dockerfile exist: the file alone answers this, so it is
    checked before connecting."""
    try:
        if not context.is_dir():
            raise ConfigError("DY003", f"build.context: {printable(str(context))} is not a "
                              "directory; set [build] context to the directory holding your "
                              "Dockerfile")
        if not (context / dockerfile).is_file():
            raise ConfigError("DY003", f"build.dockerfile: {printable(str(context / dockerfile))}"
                              " does not exist; write a Dockerfile or set [build] dockerfile (or "
                              "[build] image)")
    except OSError as exc:
        raise ConfigError("DY003", f"build.context: {printable(str(context))} cannot be read "
                          f"({exc.strerror or exc})") from None


def make_context(context: Path, dockerfile: str) -> tuple[str, int]:
    """Write the context tar to a temporary file; returns (path, number of files)."""
    check_context(context, dockerfile)
    rules = IgnoreRules.read(context)
    fd, tmp = tempfile.mkstemp(prefix="dockyard-context-", suffix=".tar")
    os.close(fd)
    count = 0
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for root, dirs, files in os.walk(context):
            rel_root = os.path.relpath(root, context).replace(os.sep, "/")
            rel_root = "" if rel_root == "." else rel_root + "/"
            dirs[:] = sorted(d for d in dirs if not (rules.excluded(rel_root + d)
                                                     and not _has_exception(rules, rel_root + d)))
            for name in sorted(files):
                rel = rel_root + name
                # the Dockerfile and .dockerignore always travel (Docker does the same)
                if rules.excluded(rel) and rel not in (dockerfile, ".dockerignore"):
                    continue
                info = tar.gettarinfo(os.path.join(root, name), arcname=rel)
                info.uid = info.gid = 0
                info.mtime = int(info.mtime)
                info.uname = info.gname = ""
                if info.isreg():
                    with open(os.path.join(root, name), "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
                count += 1
    return tmp, count


def _has_exception(rules: IgnoreRules, directory: str) -> bool:
    """Keep walking an excluded directory when a later ``!`` rule may re-include inside it."""
    return any(negate and regex.pattern.startswith("^" + re.escape(directory))
               for negate, regex in rules.rules)


def image_tag(app: str, release: int) -> str:
    return f"dockyard/{app}:v{release}"


def build_command(app: str, release: int, dockerfile: str, args: dict[str, str],
                  context_path: str, files: int, target: str | None = None) -> Command:
    """scripts/build.sh: BuildKit when the server's Docker has it, the classic builder
    otherwise (Debian's 20.10); the context is a tar on stdin."""
    argv = [f"--file={dockerfile}", f"--label=dockyard.app={app}",
            f"--label=dockyard.release={release}"]
    for key, value in sorted(args.items()):
        argv.append(f"--build-arg={key}={value}")
    if target:
        argv.append(f"--target={target}")
    argv += ["--", "-"]
    return change(scripts.argv("build", image_tag(app, release), *argv),
                  "build the image on the server from the context streamed over SSH",
                  stdin_path=context_path, stdin_label=f"<build context: {files} files>",
                  if_fails="the build's output is printed; nothing else changed: the "
                  "running release keeps serving")


def built_id(output: str) -> str:
    """The image id build.sh prints last ("image sha256:...")."""
    for line in reversed(output.split("\n")):
        if line.startswith("image sha256:"):
            return line.split()[1]
    return ""


def tag(source: str, target: str) -> Command:
    return change(["docker", "tag", "--", source, target], f"name this release's image {target}")


def prune(app: str, live: int, keep: list[int], log: str) -> Command:
    """Remove release images up to ``live`` not in ``keep``, then the app's dangling ones
    (by label: never another project's images), on the server after this command returns
    (removing an image's layers takes a while on a busy server; nothing waits for it)."""
    kept = ", ".join(f"v{n}" for n in keep) or "none"
    return change(scripts.argv("spawn", log, "sh", scripts.path("prune"), app, str(live),
                               *(str(n) for n in keep)),
                  f"keep the images of {kept} (keep_releases) and remove {app}'s older and "
                  "dangling images, on the server after this command returns",
                  if_fails="old images stay on the server (disk); the next deploy prunes them")


@dataclass
class GitInfo:
    commit: str | None
    dirty: bool


def git_info(directory: Path) -> GitInfo:
    """The laptop's git commit (+ dirty flag) for the release record; none outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, timeout=10, check=False)
        if commit.returncode != 0:
            return GitInfo(None, False)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=directory,
                                capture_output=True, text=True, timeout=10, check=False)
        return GitInfo(commit.stdout.strip(), bool(status.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        return GitInfo(None, False)
