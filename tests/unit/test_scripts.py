"""The shell scripts (src/dockyard/scripts/*.sh): the pure parts, run with sh on this machine
against a temporary directory. shellcheck checks them all in CI (scripts/test)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from dockyard import scripts
from dockyard.host.base import Entry, batch_words, parse_frames
from dockyard.state.files import tar_of


def run(name: str, *args: str, stdin: bytes = b"", root: Path | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    source = scripts.source(name)
    if root is not None:
        source = source.replace("/var/lib/dockyard", str(root))
    return subprocess.run(["sh", "-c", source, f"dockyard-{name}", *args], input=stdin,
                          capture_output=True, timeout=30)


def test_every_script_is_in_a_list_and_every_listed_one_exists() -> None:
    here = Path(scripts.__file__).parent
    on_disk = {p.stem for p in here.glob("*.sh")}
    listed = set(scripts.INSTALLED) | set(scripts.INLINE) | set(scripts.CONTAINER)
    assert on_disk == listed


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by "
                    "scripts/test (Debian's package); CI always has it")
def test_shellcheck_finds_nothing() -> None:
    here = Path(scripts.__file__).parent
    proc = subprocess.run(["shellcheck", "-s", "sh", *sorted(map(str, here.glob("*.sh")))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_write_files_replaces_whole_files_or_nothing(tmp_path: Path) -> None:
    body = tar_of({"a/env": b"A=new\n" * 1000, "b": b"x"}, mode=0o600)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "env").write_text("A=old\n")
    for cut in (0, 1, 100, len(body) // 2, len(body) - 1):
        proc = run("write-files", str(tmp_path), str(len(body)), stdin=body[:cut])
        assert proc.returncode == 1 and b"incomplete" in proc.stderr
        assert (tmp_path / "a" / "env").read_text() == "A=old\n"
    proc = run("write-files", str(tmp_path), str(len(body)), stdin=body)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "env").read_text() == "A=new\n" * 1000
    assert oct((tmp_path / "a" / "env").stat().st_mode)[-3:] == "600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary left


def test_write_files_deletes_what_remove_lists(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")
    body = tar_of({"new": b"y", ".remove": b"old\n../escape\n"})
    assert run("write-files", str(tmp_path), str(len(body)), stdin=body).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_router_files_are_written_only_over_the_routes_they_were_computed_from(
        tmp_path: Path) -> None:
    app = tmp_path / "apps" / "hello"
    app.mkdir(parents=True)
    (app / "route.json").write_text('{"app":"hello"}\n')
    seen = hashlib.sha256(b'{"app":"hello"}\n').hexdigest()
    body = tar_of({"router/etc/haproxy.cfg": b"cfg"})
    stale = run("write-files", str(tmp_path), str(len(body)), "0" * 64, stdin=body,
                root=tmp_path)
    assert stale.returncode == 75 and stale.stdout == b'{"app":"hello"}\n'
    assert not (tmp_path / "router").exists()
    fresh = run("write-files", str(tmp_path), str(len(body)), seen, stdin=body, root=tmp_path)
    assert fresh.returncode == 0 and fresh.stdout.decode().strip() == seen
    assert (tmp_path / "router" / "etc" / "haproxy.cfg").read_bytes() == b"cfg"


def test_the_batch_frames_binary_output_exactly(tmp_path: Path) -> None:
    entries = [Entry(("printf", "a\\n\\036b\\0c")), Entry(("sh", "-c", "echo e >&2; exit 5"),
                                                           check=True),
               Entry(("echo", "not run"))]
    proc = run("batch", "", str(len(entries)), *batch_words(entries), root=tmp_path)
    results = parse_frames(proc.stdout, len(entries))
    assert [r.stdout for r in results] == [b"a\n\x1eb\0c", b""]
    assert results[1].returncode == 5 and results[1].stderr == b"e\n"
    assert len(results) == 2  # the failed "check" entry stopped the batch


def test_reads_next_to_each_other_run_together_and_answer_in_order(tmp_path: Path) -> None:
    """Three reads of 0.4 s each take about 0.4 s, not 1.2; each keeps its own output, exit
    code and place; a command after them starts only when they are all done."""
    reads = [Entry(("sh", "-c", f"sleep 0.4; echo read{n}; echo err{n} >&2; exit {n}"),
                   parallel=True) for n in range(3)]
    after = Entry(("sh", "-c", f"ls {tmp_path}"))
    marker = Entry(("touch", str(tmp_path / "done")), parallel=True)
    entries = [*reads, after, marker]
    started = time.monotonic()
    proc = run("batch", "", str(len(entries)), *batch_words(entries), root=tmp_path)
    took = time.monotonic() - started
    results = parse_frames(proc.stdout, len(entries))
    assert [r.stdout for r in results[:3]] == [b"read0\n", b"read1\n", b"read2\n"]
    assert [r.stderr for r in results[:3]] == [b"err0\n", b"err1\n", b"err2\n"]
    assert [r.returncode for r in results] == [0, 1, 2, 0, 0]
    assert results[3].stdout == b""  # the touch after it had not run yet
    assert (tmp_path / "done").exists()
    assert took < 1.0, took


@pytest.mark.parametrize("name", ["download", "restore"])
@pytest.mark.parametrize("file", ["../../etc/passwd", "20261201T000000Z-manual.pgdump/x",
                                  "20261201T000000Z-x;y.tar", "x.pgdump"])
def test_backup_scripts_take_file_names_never_paths(tmp_path: Path, name: str,
                                                    file: str) -> None:
    args = [str(tmp_path), file] if name == "download" else [
        "app", "db", "postgres", "app-db", str(tmp_path), file, "tools"]
    proc = run(name, *args)
    assert proc.returncode == 2 and b"not a backup file name" in proc.stderr


def test_a_good_backup_name_passes_the_check(tmp_path: Path) -> None:
    (tmp_path / "20261201T000000Z-manual.pgdump").write_bytes(b"PGDMP")
    proc = run("download", str(tmp_path), "20261201T000000Z-manual.pgdump")
    assert proc.returncode == 0 and proc.stdout == b"PGDMP"
