#!/bin/sh
# cron-job.sh APP NAME NETWORK TIMEOUT KEEP: one run of the scheduled job [cron.NAME], by
# crond in the app's cron container, or by `dockyard cron run` over SSH (its output is
# streamed there, and kept either way).
#
# - The live release is read when the run starts (the deploy's switch writes `current`): a
#   job never runs a release that is not live, and a run keeps its release until it exits.
# - Never two runs at once: a lock directory, and no running container of the job (a run
#   outlives a replaced cron container).
# - The run is a one-off container with the release's image, env file and network, labelled
#   dockyard.cron (no dockyard.process: deploys leave it alone). It is stopped after TIMEOUT s.
# - Kept: runs/NAME/index (start, exit, seconds, release per line) and each run's output, the
#   last KEEP of them; a line in the audit log; a failure is notified (notify.sh).
app=$1; name=$2; network=$3; timeout=$4; keep=$5
dir=/var/lib/dockyard/apps/$app
here=$dir/cron
runs=$here/runs/$name
mkdir -p "$runs"
# the lock: a directory (mkdir is atomic); one older than the timeout is a killed run's
lock=$runs/running
if [ -d "$lock" ] && [ $(( $(date +%s) - $(cat "$lock/since" 2>/dev/null || echo 0) )) \
    -gt $((timeout + 60)) ]; then
  rm -rf "$lock"
fi
if ! mkdir "$lock" 2>/dev/null; then
  echo "cron-job.sh: $name is still running from an earlier start; this start is skipped" >&2
  exit 75
fi
date +%s > "$lock/since"
trap 'rm -rf "$lock"' EXIT
if [ -n "$(docker ps -q --filter "label=dockyard.cron=$app/$name")" ]; then
  echo "cron-job.sh: $name is still running from an earlier start; this start is skipped" >&2
  exit 75
fi
n=$(cat "$dir/current" 2>/dev/null)
image=$(sed -n 's/.*"image":"\([^"]*\)".*/\1/p' "$dir/releases/v$n.json" 2>/dev/null)
if [ -z "$n" ] || [ -z "$image" ]; then
  echo "cron-job.sh: $app has no live release; $name did not run" >&2
  exit 1
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
start=$(date +%s)
container="$app-cron-$name-$stamp-$$"
eval "set -- $(cat "$here/jobs/$name.cmd")"
# the job's own timeout: stop its container (docker run's client ending would not). Its
# output goes nowhere (a reader of ours waits for every writer), and its sleep ends with it.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$timeout" & s=$!
  wait "$s" && touch "$runs/$stamp.timeout" && docker stop -t 10 -- "$container"
) > /dev/null 2>&1 &
watchdog=$!
{
  docker run --rm --name="$container" --label="dockyard.app=$app" \
    --label="dockyard.cron=$app/$name" --label="dockyard.release=$n" \
    --network="$network" --init --env-file="$dir/env/v$n.env" -- "$image" "$@" 2>&1
  echo $? > "$runs/$stamp.rc"
} | tee "$runs/$stamp.log"
kill "$watchdog" 2>/dev/null
rc=$(cat "$runs/$stamp.rc" 2>/dev/null || echo 255)
rm -f "$runs/$stamp.rc"
if [ -e "$runs/$stamp.timeout" ]; then
  rm -f "$runs/$stamp.timeout"
  echo "cron-job.sh: $name was stopped after its timeout (${timeout}s)" | tee -a "$runs/$stamp.log"
  rc=124
fi
end=$(date +%s)
printf '%s\t%s\t%s\tv%s\n' "$stamp" "$rc" "$((end - start))" "$n" >> "$runs/index"
# the last KEEP runs stay
tail -n "$keep" "$runs/index" > "$runs/index.new" && mv "$runs/index.new" "$runs/index"
count=$(find "$runs" -name '*.log' | wc -l)
if [ "$count" -gt "$keep" ]; then
  find "$runs" -name '*.log' | sort | head -n "$((count - keep))" | xargs rm -f
fi
printf '{"time":"%s","user":"cron","invocation":"cron","subcommand":"cron","app":"%s",%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$app" \
  "$(printf '"command":"scheduled job %s (v%s)","exit":%d,"duration_ms":%d}' \
    "$name" "$n" "$rc" "$(( (end - start) * 1000 ))")" >> /var/lib/dockyard/audit.log
if [ "$rc" -ne 0 ]; then
  sh "$here/notify.sh" "$app" cron.failed "scheduled job $name failed (exit $rc) on v$n"
fi
exit "$rc"
