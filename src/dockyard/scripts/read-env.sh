#!/bin/sh
# read-env.sh BASE: a release's environment snapshot: BASE.env (everything it got), a NUL
# byte, then BASE.server (the server's part; empty for releases made before it existed).
# Read-only; sent inline.
cat -- "$1.env" || exit 1
printf '\0'
cat -- "$1.server" 2> /dev/null
exit 0
