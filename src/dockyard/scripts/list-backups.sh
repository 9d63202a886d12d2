#!/bin/sh
# list-backups.sh DIR: one line per backup in DIR: "FILE BYTES SHA256".
dir=$1
cd "$dir" 2>/dev/null || exit 0
for f in *; do
  case $f in *.sha256) continue ;; esac
  [ -f "$f" ] || continue
  sum=$(cut -d' ' -f1 "$f.sha256" 2>/dev/null || echo -)
  echo "$f $(wc -c < "$f" | tr -d ' ') $sum"
done
