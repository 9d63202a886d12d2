#!/bin/sh
# batch.sh: run several commands in one SSH round trip, and say how each ended.
#
#   sh -c "$(cat batch.sh)" dockyard-batch PENDING COUNT  FLAGS PREFIX ARGC WORD... ...
#
# PENDING: complete audit lines not written yet (Runtime API changes), written first.
# For each of the COUNT commands: FLAGS (letters: a = append a line to the audit log,
# c = stop the batch when it fails, i = it reads this script's stdin; the others read
# /dev/null), PREFIX (the audit line's JSON fields, built by Dockyard: who, which command,
# the command line with secrets redacted), ARGC and its ARGC words.
#
# Output, for each command that ran: a frame header
#   \036 INDEX EXIT DURATION_MS OUT_BYTES ERR_BYTES \n
# followed by exactly OUT_BYTES of its stdout and ERR_BYTES of its stderr. Commands after
# one that failed with "c" are not run (no frame). Sent inline (it runs before Dockyard's
# scripts are installed); POSIX sh.
set -u
pending=$1
count=$2
shift 2
root=/var/lib/dockyard
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dockyard-batch.XXXXXX") || exit 111
trap 'rm -rf "$tmp"' EXIT
exec 3<&0 0</dev/null

now_ms() {
  n=$(date +%s%N 2>/dev/null)
  case $n in *[!0-9]* | "") echo "" ;; *) echo $((n / 1000000)) ;; esac
}

audit() { # PREFIX EXIT DURATION
  [ -d "$root" ] || return 0
  ms=$3
  [ -n "$ms" ] || ms=null
  (
    umask 077
    if [ -n "$pending" ]; then printf '%s' "$pending"; fi
    printf '{"time":"%s",%s,"exit":%d,"duration_ms":%s}\n' "$started_at" "$1" "$2" "$ms"
  ) >> "$root/audit.log"
  pending=""
}

i=0
stop=0
while [ "$i" -lt "$count" ]; do
  flags=$1
  prefix=$2
  argc=$3
  shift 3
  j=0
  words=""
  while [ "$j" -lt "$argc" ]; do
    eval "w$j=\$1"
    words="$words \"\$w$j\""
    shift
    j=$((j + 1))
  done
  if [ "$stop" = 1 ]; then
    i=$((i + 1))
    continue
  fi
  started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  t0=$(now_ms)
  case $flags in
    *i*) eval "$words" <&3 > "$tmp/out" 2> "$tmp/err" ;;
    *) eval "$words" < /dev/null > "$tmp/out" 2> "$tmp/err" ;;
  esac
  rc=$?
  t1=$(now_ms)
  took=""
  if [ -n "$t0" ] && [ -n "$t1" ]; then took=$((t1 - t0)); fi
  case $flags in *a*) audit "$prefix" "$rc" "$took" ;; esac
  printf '\036%d %d %s %d %d\n' "$i" "$rc" "${took:-0}" \
    "$(wc -c < "$tmp/out" | tr -d ' ')" "$(wc -c < "$tmp/err" | tr -d ' ')"
  cat "$tmp/out" "$tmp/err"
  if [ "$rc" != 0 ]; then
    case $flags in *c*) stop=1 ;; esac
  fi
  i=$((i + 1))
done
if [ -n "$pending" ] && [ -d "$root" ]; then
  (umask 077; printf '%s' "$pending") >> "$root/audit.log"
fi
exit 0
