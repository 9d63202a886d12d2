# Join a swarm with the token read from stdin, so it never appears in Dockyard's argv, its
# --dry-run output or the audit log.
# usage: sh swarm-join.sh MANAGER_ADDR:PORT ADVERTISE_ADDR   (token on stdin)
set -eu
IFS= read -r token
[ -n "$token" ] || { echo "swarm-join: no token on stdin" >&2; exit 2; }
exec docker swarm join --token "$token" --advertise-addr "$2" --listen-addr "$2:2377" -- "$1"
