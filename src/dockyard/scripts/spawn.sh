#!/bin/sh
# spawn.sh COMMAND...: start COMMAND detached from this SSH session (it goes on after
# Dockyard returns and after the connection closes); its output goes to the log given by
# DOCKYARD_SPAWN_LOG, or nowhere.
setsid "$@" < /dev/null >> "${DOCKYARD_SPAWN_LOG:-/dev/null}" 2>&1 &
