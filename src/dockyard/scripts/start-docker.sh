#!/bin/sh
# start-docker.sh: start Docker now and at every boot (systemd when it runs, the service
# command otherwise). Sent inline: `server setup` runs before Dockyard's scripts exist.
if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
  systemctl enable --now docker
else
  service docker start
fi
