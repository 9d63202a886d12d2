#!/bin/sh
# pull.sh IMAGE TAG [--untag] [--login REGISTRY USER]: docker pull IMAGE, name it TAG (the
# release's image), print "image ID" and "digest REPO@sha256:..." (what the release records).
#   --untag  remove the name IMAGE afterwards (a shipped image's temporary 127.0.0.1:PORT name)
#   --login  log in to REGISTRY as USER first, the password read from stdin, with a Docker
#            config of its own in a private temporary directory (memory when /dev/shm is
#            there), removed when the pull ends, fails or is interrupted: the credential is
#            in no argv and stays in no file.
# Exit 41 (with docker login's words on stderr) when the registry refuses the login.
set -eu
image=$1
tag=$2
shift 2
untag=no
registry=""
user=""
while [ $# -gt 0 ]; do
  case $1 in
    --untag) untag=yes; shift ;;
    --login) registry=$2; user=$3; shift 3 ;;
    *) echo "pull.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -n "$registry" ]; then
  base=/tmp
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; fi
  DOCKER_CONFIG=$(mktemp -d "$base/dockyard-login.XXXXXX")
  export DOCKER_CONFIG
  trap 'rm -rf "$DOCKER_CONFIG"' EXIT
  trap 'exit 130' INT TERM HUP
  if ! out=$(docker login --username "$user" --password-stdin "$registry" 2>&1); then
    printf '%s\n' "$out" >&2
    exit 41
  fi
fi
docker pull --quiet "$image" > /dev/null
docker tag "$image" "$tag"
# one inspect: the id on the first line, then the names it was pulled by (repo@digest)
facts=$(docker image inspect --format '{{println .Id}}{{range .RepoDigests}}{{println .}}{{end}}' -- "$image")
repo=${image%:*}
ref=$(printf '%s\n' "$facts" | grep -F "$repo@" | head -n 1 || true)
printf 'image %s\n' "$(printf '%s\n' "$facts" | head -n 1)"
printf 'digest %s\n' "$ref"
if [ "$untag" = yes ]; then
  # the name REPO@DIGEST goes with the repository's last tag
  docker image rm --no-prune "$image" > /dev/null
fi
