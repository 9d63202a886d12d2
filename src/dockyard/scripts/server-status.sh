#!/bin/sh
# server-status.sh: what `dockyard server status` shows, in tab-separated lines. Sent
# inline; read-only.
#   app NAME CURRENT KEEP      one per app directory (CURRENT "-" before a first release)
#   domains NAME D1 D2 ...     from the app's route.json
#   ctr NAME PROCESS STATE     each app container with a process label
#   df TYPE SIZE RECLAIMABLE   docker system df (images, containers, volumes, build cache)
#   logs BYTES                 the containers' json-file logs
#   backups BYTES              /var/lib/dockyard/backups
#   fs SIZE_KB USED_KB AVAIL_KB PCENT   the filesystem Docker keeps its data on
export LC_ALL=C
state=/var/lib/dockyard
for dir in "$state"/apps/*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir")
  current=$(cat "$dir/current" 2>/dev/null || echo -)
  keep=$(cat "$dir/keep" 2>/dev/null || echo 5)
  printf 'app\t%s\t%s\t%s\n' "$name" "${current:--}" "$keep"
  if [ -f "$dir/route.json" ]; then
    domains=$(sed -n 's/.*"domains":\[\([^]]*\)\].*/\1/p' "$dir/route.json" | tr -d '"' | tr ',' '\t')
    printf 'domains\t%s\t%s\n' "$name" "$domains"
  fi
done
docker ps -a --filter label=dockyard.process \
  --format '{{.Label "dockyard.app"}}	{{.Label "dockyard.process"}}	{{.State}}' |
  sed 's/^/ctr\t/'
docker system df --format '{{.Type}}	{{.Size}}	{{.Reclaimable}}' | sed 's/^/df\t/'
root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null)
logs=$(find "${root:-/var/lib/docker}/containers" -name '*-json.log*' -exec du -k {} + 2>/dev/null |
  awk '{s += $1} END {print s * 1024 + 0}')
printf 'logs\t%s\n' "${logs:-0}"
backups=$(du -sk "$state/backups" 2>/dev/null | awk '{print $1 * 1024}')
printf 'backups\t%s\n' "${backups:-0}"
df -Pk "${root:-/var/lib/docker}" | awk 'NR == 2 {print "fs\t" $2 "\t" $3 "\t" $4 "\t" $5}'
