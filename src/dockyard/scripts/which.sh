#!/bin/sh
# which.sh NAME: exit 0 when the command NAME is installed. Read-only; sent inline.
command -v "$1" > /dev/null
