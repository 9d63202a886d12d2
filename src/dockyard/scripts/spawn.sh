#!/bin/sh
# spawn.sh LOG COMMAND...: start COMMAND detached from this SSH session (it goes on after
# Dockyard returns and after the connection closes), its output appended to LOG.
log=$1
shift
mkdir -p "$(dirname "$log")"
setsid "$@" < /dev/null >> "$log" 2>&1 &
