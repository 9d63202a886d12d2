#!/bin/sh
# write-files.sh DIR BYTES [ROUTES_DIGEST]: the one way Dockyard writes state files.
#
# stdin is a tar of the files (paths relative to DIR), BYTES long. It is received whole
# into a temporary directory first (a connection cut mid-transfer changes nothing), then each
# file replaces the old one by a rename: a reader (a restarting router, another dockyard)
# sees the old file or the new one, never half of one. Files keep the modes the tar gives.
#
# A member named .remove lists paths (relative to DIR, one per line) deleted after the
# others are placed (an app's route.json when it is removed).
#
# With ROUTES_DIGEST (router files): the write happens under the server-wide router lock,
# and only if the routes on the server are still the ones Dockyard computed from (the
# sha256 of apps/*/route.json, in name order); otherwise nothing is written, the current
# routes are printed, and the exit code is 75: Dockyard reads them again and retries.
# After a write, it prints the new routes' digest (the next write's ROUTES_DIGEST).
set -eu
dir=$1
bytes=$2
expect=${3:-}
root=/var/lib/dockyard
umask 077
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/.tar"
got=$(wc -c < "$tmp/.tar")
got=$((got))
if [ "$got" != "$bytes" ]; then
  echo "incomplete write ($got of $bytes bytes): nothing changed" >&2
  exit 1
fi
mkdir "$tmp/files"
tar -x --no-same-owner -p -f "$tmp/.tar" -C "$tmp/files"
place() {
  (cd "$tmp/files" && find . -type f ! -name .remove) | while IFS= read -r f; do
    f=${f#./}
    case $f in */*) [ -d "$dir/${f%/*}" ] || mkdir -p "$dir/${f%/*}" ;; esac
    mv -f "$tmp/files/$f" "$dir/$f"
  done
  if [ -f "$tmp/files/.remove" ]; then
    while IFS= read -r f; do
      case $f in "" | /* | *..*) continue ;; esac
      rm -f "$dir/$f"
    done < "$tmp/files/.remove"
  fi
}
if [ -z "$expect" ]; then
  place
  exit 0
fi
exec 9>> "$root/router.lock"
flock -w 30 9
export LC_ALL=C
# every route.json in name order, as read-routes.sh prints them (one cat: a process each is
# slow on a busy server)
routes() {
  set -- "$root"/apps/*/route.json
  if [ -f "$1" ]; then cat "$@"; fi
}
have=$(routes | sha256sum)
have=${have%% *}
if [ "$have" != "$expect" ]; then
  routes
  exit 75
fi
place
have=$(routes | sha256sum)
echo "${have%% *}"
