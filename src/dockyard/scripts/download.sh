#!/bin/sh
# download.sh DIR FILE: print a backup file (FILE checked as in restore.sh).
set -eu
dir=$1; file=$2
case $file in
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.pgdump|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.rdb|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.tar) ;;
  *) echo "not a backup file name: $file" >&2; exit 2 ;;
esac
case $file in */*|*[!a-zA-Z0-9.-]*) echo "not a backup file name: $file" >&2; exit 2 ;; esac
exec cat "$dir/$file"
