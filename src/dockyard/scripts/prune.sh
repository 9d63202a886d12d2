#!/bin/sh
# prune.sh APP KEEP...: remove APP's release images (dockyard/APP:vN) whose N is not in KEEP,
# by tag (an image that has other names keeps them), then the dangling images Dockyard made
# for APP (by label): never another project's images.
app=$1
shift
keep=" $* "
for tag in $(docker image ls --format '{{.Tag}}' -- "dockyard/$app"); do
  case "$keep" in
    *" ${tag#v} "*) ;;
    *) docker image rm -- "dockyard/$app:$tag" > /dev/null 2>&1 || true ;;
  esac
done
docker image prune -f --filter "label=dockyard.app=$app" > /dev/null
