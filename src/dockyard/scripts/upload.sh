#!/bin/sh
# upload.sh DIR FILE: store stdin as DIR/FILE (received whole first) with its SHA-256.
set -eu
dir=$1; file=$2
umask 077
mkdir -p "$dir"
tmp=$dir/.$file.partial
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
mv "$tmp" "$dir/$file"
echo "$sum  $file" > "$dir/$file.sha256"
trap - EXIT
echo "$file $(wc -c < "$dir/$file" | tr -d ' ') $sum"
