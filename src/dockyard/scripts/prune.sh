#!/bin/sh
# prune.sh APP UPTO KEEP...: remove APP's release images (dockyard/APP:vN) whose N is at most
# UPTO and not in KEEP, by tag (an image that has other names keeps them), then the dangling
# images Dockyard made for APP (by label: never another project's images) created before
# this script started.
#
# It runs detached, after the deploy that started it returned (spawn.sh): the next deploy
# may already be building. UPTO (the release just made live) and the start time keep its
# images safe: they are newer.
app=$1
upto=$2
shift 2
keep=" $* "
before=$(date +%s)
for tag in $(docker image ls --format '{{.Tag}}' -- "dockyard/$app"); do
  n=${tag#v}
  case $n in '' | *[!0-9]*) continue ;; esac
  [ "$n" -le "$upto" ] || continue
  case "$keep" in
    *" $n "*) ;;
    *) docker image rm -- "dockyard/$app:$tag" > /dev/null 2>&1 || true ;;
  esac
done
docker image prune -f --filter "label=dockyard.app=$app" --filter "until=$before" > /dev/null
