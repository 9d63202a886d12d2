#!/bin/sh
# build.sh TAG DOCKER-BUILD-ARGS...: docker build --tag=TAG, with BuildKit when the server's
# Docker has it (buildx), the classic builder otherwise (Debian's 20.10). The context comes
# on stdin. Prints "image ID" last: the id recorded with the release.
tag=$1
shift
if docker buildx version > /dev/null 2>&1; then
  docker build --tag="$tag" "$@" || exit $?
else
  DOCKER_BUILDKIT=0 docker build --tag="$tag" "$@" || exit $?
fi
printf 'image %s\n' "$(docker image inspect --format '{{.Id}}' -- "$tag")"
