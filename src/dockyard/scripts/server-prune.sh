#!/bin/sh
# server-prune.sh list|remove: what no kept release, accessory or backup needs, one line
# each ("image REF BYTES", "container NAME", "volume NAME" (listed, never removed: data)),
# and with "remove" it goes. Sent inline.
#   - release images (dockyard/APP:vN) of apps no longer on the server, and of releases
#     beyond what the app keeps: its live release, the newest KEEP releases that served
#     (apps/APP/keep, written by deploys; 5 when absent) and any newer one, recorded or not
#     (a deploy under way builds its image before it records the release). An app whose
#     lock is held (a deploy, rollback or restart under way) keeps all its images.
#   - dangling images Dockyard built (label dockyard.app)
#   - stopped app containers (a process or a one-off release container) of apps not busy:
#     never an accessory
#   - volumes of apps no longer on the server: listed only
export LC_ALL=C
mode=$1
state=/var/lib/dockyard
kept() {  # kept APP: the release numbers APP's images must keep, one per line
  dir=$state/apps/$1
  current=$(cat "$dir/current" 2>/dev/null)
  keep=$(cat "$dir/keep" 2>/dev/null || echo 5)
  [ -n "$current" ] && echo "$current"
  newest=0
  served=$(for f in "$dir"/releases/v*.json; do
    [ -f "$f" ] || continue
    case $(sed -n 's/.*"outcome":"\([a-z]*\)".*/\1/p' "$f") in
      live | superseded) n=${f##*/v}; echo "${n%.json}" ;;
    esac
  done | sort -n)
  for n in $served; do newest=$n; done
  echo "above $newest"
  printf '%s\n' "$served" | tail -n "$keep"
}
busy() {  # busy APP: true while a command holds APP's lock (scripts/lock.sh)
  [ -e "$state/apps/$1/lock" ] && ! flock -n "$state/apps/$1/lock" true
}
docker image ls --format '{{.Repository}} {{.Tag}} {{.ID}}' | while read -r repo tag id; do
  case $repo in dockyard/*) ;; *) continue ;; esac
  app=${repo#dockyard/}
  if [ -d "$state/apps/$app" ]; then
    n=${tag#v}
    case $n in '' | *[!0-9]*) continue ;; esac
    busy "$app" && continue
    keeping=$(kept "$app")
    printf '%s\n' "$keeping" | grep -qx "$n" && continue
    above=$(printf '%s\n' "$keeping" | sed -n 's/^above //p')
    [ "$n" -gt "${above:-0}" ] && continue
  fi
  size=$(docker image inspect --format '{{.Size}}' "$id" 2>/dev/null)
  echo "image $repo:$tag ${size:-0}"
  [ "$mode" = remove ] && docker image rm -- "$repo:$tag" > /dev/null 2>&1
done
docker image ls -q --filter dangling=true --filter label=dockyard.app | sort -u | while read -r id; do
  size=$(docker image inspect --format '{{.Size}}' "$id" 2>/dev/null)
  echo "image $id ${size:-0}"
  [ "$mode" = remove ] && docker image rm -- "$id" > /dev/null 2>&1
done
docker ps -a --filter label=dockyard.process --filter status=exited --filter status=created \
    --filter status=dead --format '{{.Names}} {{.Label "dockyard.app"}}' |
  while read -r name app; do
  busy "$app" && continue
  echo "container $name"
  [ "$mode" = remove ] && docker rm -- "$name" > /dev/null 2>&1
done
docker volume ls --filter label=dockyard.app --format '{{.Name}} {{.Label "dockyard.app"}}' |
  while read -r volume app; do
    [ -d "$state/apps/$app" ] || echo "volume $volume"
  done
true
