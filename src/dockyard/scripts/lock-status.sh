#!/bin/sh
# lock-status.sh PATH: "held" and the holder's line (pid and JSON), or "free". Read-only;
# sent inline.
if [ -e "$1" ] && ! flock -n "$1" true; then
  echo held
  cat "$1.info" 2> /dev/null
else
  echo free
fi
exit 0
