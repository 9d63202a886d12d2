"""Hypothesis strategies for Dockyard's inputs: valid configs (every value drawn from its
grammar, hostile where the grammar allows it), and the raw material of fuzzed files and
command lines.

Counts: ``DOCKYARD_FUZZ_EXAMPLES`` (default small, for CI); ``bench/fuzz`` runs the same
tests with large counts and a printed seed.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dockyard import values

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

#: A marker no flag Dockyard writes contains: user values that look like options carry it,
#: so the argv property can tell them from Dockyard's own flags.
HOSTILE = "--dockyard-hostile"


def _grammar(pattern: re.Pattern[str]) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


app_names = _grammar(values._APP)
process_names = _grammar(values._PROCESS).filter(lambda n: n != "web")
accessory_names = _grammar(values._PROCESS).filter(
    lambda n: n not in ("web", "release", "run", "cron"))
env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.builds(lambda parts: ".".join(parts), st.lists(labels, min_size=1, max_size=4)
                    ).filter(lambda d: len(d) <= 253)

#: Text a person could paste: anything but NUL (argv cannot carry it).
any_text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                   max_size=40)
hostile_words = st.one_of(
    st.builds(lambda s: f"{HOSTILE}{s}", st.text(string.ascii_letters + "=:-", max_size=8)),
    st.sampled_from([f"{HOSTILE}=x", f"-v{HOSTILE}", f"-{HOSTILE}"]),
)
#: One argv word of a user command: hostile ones included.
words = st.one_of(any_text, hostile_words)
env_values = st.one_of(
    st.text(st.characters(blacklist_characters="\0" + values.LINE_BREAKS,
                          blacklist_categories=("Cs",)), max_size=30),
    hostile_words,
)
commands = st.lists(words, min_size=1, max_size=4)
ports = st.integers(1, 65535)

_component = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True)
images = st.builds(
    lambda registry, path, tag: f"{registry}{'/'.join(path)}{tag}",
    st.sampled_from(["", "ghcr.io/", "localhost:5000/", "registry.example.com:443/"]),
    st.lists(_component, min_size=1, max_size=3),
    st.one_of(st.just(""), st.from_regex(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True)),
).filter(lambda ref: _valid(values.image_ref, ref))


def _valid(check: Any, value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def durations(low_ms: int, high_ms: int) -> st.SearchStrategy[Any]:
    """A duration as a person writes it: "1m30s", "500ms", 12, 1.5."""
    return st.one_of(
        st.integers(low_ms, high_ms).map(_fmt),
        st.integers(-(-low_ms // 1000), high_ms // 1000),  # whole seconds, as an integer
        st.integers(-(-low_ms // 500), high_ms // 500).map(lambda n: n / 2),  # 1.5 (seconds)
    )


def _fmt(ms: int) -> str:
    from dockyard.config.duration import format_ms

    return format_ms(ms)


crons = st.one_of(st.sampled_from(["hourly", "daily", "weekly", "@daily", "30 2 * * *",
                                   "*/15 * * * *", "0 0-6/2 1,15 * 1-5"]))


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid dockyard.toml as a dict (every key drawn, hostile values where allowed)."""
    processes = draw(st.dictionaries(process_names, commands, max_size=3))
    accessory_keys = draw(st.lists(accessory_names, max_size=2, unique=True))
    accessory_keys = [a for a in accessory_keys if a not in processes]
    data: dict[str, Any] = {
        "app": {"name": draw(app_names)},
        "server": {"host": draw(st.sampled_from([
            "local", "ssh://root@203.0.113.5:22", "ssh://deploy@vps.example.com",
            "ssh://myvps", "ssh://root@[2001:db8::1]:2222"])),
            "connect_timeout": draw(durations(1000, 300_000))},
        "build": {"args": draw(st.dictionaries(env_keys, words, max_size=3))},
        "web": {"port": draw(ports),
                "domains": draw(st.lists(domains, max_size=3, unique=True)),
                "tls": draw(st.booleans()),
                "healthcheck": draw(st.from_regex(r"/[a-z0-9/_.-]{0,20}", fullmatch=True)),
                "healthcheck_interval": draw(durations(100, 3_600_000)),
                "healthcheck_give_up": draw(durations(1000, 86_400_000))},
        "processes": processes,
        "env": draw(st.dictionaries(env_keys, env_values, max_size=4)),
        "deploy": {"drain_timeout": draw(durations(0, 86_400_000)),
                   "stop_timeout": draw(durations(0, 3_600_000)),
                   "keep_releases": draw(st.integers(1, 100))},
        "accessories": {},
    }
    if draw(st.booleans()):
        data["build"]["image"] = draw(images)
    if draw(st.booleans()):
        data["web"]["command"] = draw(commands)
    if draw(st.booleans()):
        data["release"] = {"command": draw(commands)}
    if draw(st.booleans()):
        http, https = draw(st.lists(ports, min_size=2, max_size=2, unique=True))
        data["proxy"] = {"http_port": http, "https_port": https,
                         "router_image": draw(images), "tools_image": draw(images),
                         "cert_wait": draw(durations(0, 3_600_000)),
                         "tunnel_timeout": draw(durations(1000, 7 * 86_400_000))}
    for name in accessory_keys:
        acc: dict[str, Any] = {
            "image": draw(images),
            "env": draw(st.dictionaries(env_keys, env_values, max_size=2)),
            "secrets": draw(st.lists(env_keys, max_size=2, unique=True)),
            "volumes": draw(st.lists(st.builds(lambda n, p: f"{n}:/{p}", labels, labels),
                                     max_size=2)),
        }
        if draw(st.booleans()):
            acc["cmd"] = draw(commands)
        if draw(st.booleans()):
            acc["port"] = str(draw(ports))
        if draw(st.booleans()):
            acc["type"] = draw(st.sampled_from(["postgres", "redis"]))
            acc["backup"] = {"schedule": draw(crons), "keep": draw(st.integers(1, 1000))}
        data["accessories"][name] = acc
    return data
