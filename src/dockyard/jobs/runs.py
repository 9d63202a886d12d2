"""What the runs of a scheduled job left on the server (scripts/cron-job.sh keeps them under
``/var/lib/dockyard/apps/<app>/cron/runs/<job>/``), and the commands of `dockyard cron`."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass

from dockyard.accessories import cron
from dockyard.docker import networks
from dockyard.host.command import Answer, Fact, fact


@dataclass(frozen=True)
class Run:
    started: str  # 20261202T121000Z (UTC)
    exit: int
    seconds: int
    release: str

    @property
    def ok(self) -> bool:
        return self.exit == 0

    @property
    def result(self) -> str:
        if self.exit == 0:
            return "ok"
        return "timed out" if self.exit == 124 else f"failed (exit {self.exit})"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "result": self.result}


@dataclass
class JobRuns:
    runs: dict[str, list[Run]]  # oldest first
    running: set[str]  # jobs with a run going on now
    timezone: str  # the server's ("" when it does not say)


def runs_dir(app: str, job: str) -> str:
    return f"{cron.cron_dir(app)}/runs/{job}"


def read(app: str, jobs: list[str]) -> Fact[JobRuns]:
    """Every job's kept runs, which run now, and the server's time zone, in one command."""
    script = (
        'app=$1; shift; tz=$(cat /etc/timezone 2>/dev/null || readlink /etc/localtime '
        '2>/dev/null | sed "s|.*/zoneinfo/||"); echo "tz $tz"; '
        'docker ps --filter "label=dockyard.app=$app" --format '
        '\'running {{.Label "dockyard.cron"}}\' 2>/dev/null; '
        f'for job in "$@"; do f={cron.cron_dir(app)}/runs/$job/index; '
        '[ -f "$f" ] && sed "s/^/run $job /" "$f"; done; true')

    def parse(answer: Answer) -> JobRuns:
        out = JobRuns({job: [] for job in jobs}, set(), "")
        for line in answer.out.splitlines():
            word, _, rest = line.partition(" ")
            if word == "tz":
                out.timezone = rest.strip()
            elif word == "running" and rest.startswith(f"{app}/"):
                out.running.add(rest.split("/", 1)[1])
            elif word == "run":
                job, _, record = rest.partition(" ")
                parts = record.split("\t")
                if job in out.runs and len(parts) == 4 and parts[1].lstrip("-").isdigit() \
                        and parts[2].isdigit():
                    out.runs[job].append(Run(parts[0], int(parts[1]), int(parts[2]), parts[3]))
        return out

    return fact(["sh", "-c", script, "cron-runs", app, *jobs], parse,
                f"{app}'s scheduled jobs: their last runs, which runs now")


def run_now(app: str, job: str, timeout: float, keep: int) -> list[str]:
    """One run of ``job`` now, the same script crond runs: its output streams back."""
    return ["sh", f"{cron.cron_dir(app)}/cron-job.sh", app, job, networks.app_network(app),
            str(round(timeout)), str(keep)]


def last_log(app: str, job: str, count: int) -> list[str]:
    """The output of the last ``count`` runs, each under a header line."""
    script = ('cd "$1" 2>/dev/null || exit 0; for f in $(ls -- *.log 2>/dev/null | sort | '
              'tail -n "$2"); do echo "--- run started ${f%.log}"; cat -- "$f"; done')
    return ["sh", "-c", script, "cron-logs", runs_dir(app, job), str(count)]


def shown(command: list[str]) -> str:
    return shlex.join(command)
