#!/bin/sh
# kept.sh APP NAME...: what removing APP leaves on the server unless asked to delete it:
# "backups N" (backup files under the app's backup directory) and "cert NAME" for each NAME
# with a certificate on disk.
app=$1
shift
n=0
if [ -d "/var/lib/dockyard/backups/$app" ]; then
  n=$(find "/var/lib/dockyard/backups/$app" -type f ! -name '*.sha256' | wc -l | tr -d ' ')
fi
echo "backups $n"
for name in "$@"; do
  if [ -e "/var/lib/dockyard/router/etc/certs/$name.pem" ] \
      || [ -e "/var/lib/dockyard/certs/lego/certificates/$name.pem" ]; then
    echo "cert $name"
  fi
done
