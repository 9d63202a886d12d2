#!/bin/sh
# batch.sh: run several commands in one SSH round trip, and say how each ended.
#
#   sh -c "$(cat batch.sh)" dockyard-batch PENDING COUNT  FLAGS PREFIX ARGC WORD... ...
#
# PENDING: complete audit lines not written yet (Runtime API changes), written first.
# For each of the COUNT commands: FLAGS (letters: a = append a line to the audit log,
# c = stop the batch when it fails, i = it reads this script's stdin; the others read
# /dev/null; p = a read that may run at the same time as the reads next to it: each run of
# such commands starts together and is waited for before what follows; its duration is not
# measured), PREFIX (the audit line's JSON fields, built by Dockyard: who, which command,
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

# Few processes per command (on a busy server each one costs milliseconds): one date at
# each end of a command that changes something, one wc and one cat per frame or per run of
# reads; the rest are shell builtins.

# now: "TIME MS" (the audit line's UTC time, and milliseconds for durations) in one date
now() {
  n=$(date -u '+%Y-%m-%dT%H:%M:%SZ %s%N' 2>/dev/null)
  stamp=${n% *}
  ms=${n#* }
  case $ms in *[!0-9]* | "") ms="" ;; *) ms=$((ms / 1000000)) ;; esac
}

audit() { # PREFIX EXIT DURATION
  [ -d "$root" ] || return 0
  took_ms=$3
  [ -n "$took_ms" ] || took_ms=null
  (
    umask 077
    if [ -n "$pending" ]; then printf '%s' "$pending"; fi
    printf '{"time":"%s",%s,"exit":%d,"duration_ms":%s}\n' "$started_at" "$1" "$2" "$took_ms"
  ) >> "$root/audit.log"
  pending=""
}

# the frame of one command: header, then its stdout and stderr (files in $tmp)
frame() { # INDEX EXIT DURATION_MS
  # shellcheck disable=SC2046  # wc's output split into words: "N out N err N total"
  set -- "$1" "$2" "$3" $(cd "$tmp" && wc -c out err)
  printf '\036%d %d %s %d %d\n' "$1" "$2" "${3:-0}" "$4" "$6"
  if [ "$4" != 0 ] || [ "$6" != 0 ]; then cat "$tmp/out" "$tmp/err"; fi
}

# the reads started together ("p"): wait for them, then their frames in order
group=""
flush() {
  [ -n "$group" ] || return 0
  wait
  names=""
  for k in $group; do names="$names $k.out $k.err"; done
  # shellcheck disable=SC2086,SC2046  # names have no spaces; wc's words: "N k.out N k.err ..."
  set -- $(cd "$tmp" && wc -c $names)
  list=""
  for k in $group; do
    rc=255
    [ -f "$tmp/$k.rc" ] && read -r rc < "$tmp/$k.rc"
    printf '\036%d %d 0 %d %d\n' "$k" "$rc" "$1" "$3" > "$tmp/$k.hdr"
    shift 4
    list="$list $k.hdr $k.out $k.err"
  done
  # shellcheck disable=SC2086
  (cd "$tmp" && cat $list)
  group=""
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
  case $flags in
    *p*)
      (
        eval "$words" < /dev/null > "$tmp/$i.out" 2> "$tmp/$i.err"
        echo "$?" > "$tmp/$i.rc"
      ) &
      group="$group $i"
      i=$((i + 1))
      continue
      ;;
  esac
  flush
  now
  started_at=$stamp
  t0=$ms
  case $flags in
    *i*) eval "$words" <&3 > "$tmp/out" 2> "$tmp/err" ;;
    *) eval "$words" < /dev/null > "$tmp/out" 2> "$tmp/err" ;;
  esac
  rc=$?
  now
  took=""
  if [ -n "$t0" ] && [ -n "$ms" ]; then took=$((ms - t0)); fi
  case $flags in *a*) audit "$prefix" "$rc" "$took" ;; esac
  frame "$i" "$rc" "$took"
  if [ "$rc" != 0 ]; then
    case $flags in *c*) stop=1 ;; esac
  fi
  i=$((i + 1))
done
flush
if [ -n "$pending" ] && [ -d "$root" ]; then
  (umask 077; printf '%s' "$pending") >> "$root/audit.log"
fi
exit 0
