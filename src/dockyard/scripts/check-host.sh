#!/bin/sh
# check-host.sh: what already runs on this server, for `dockyard server check`. Read-only;
# sent inline. Sections: "--listen" (listening TCP sockets with their processes, from ss),
# "--containers" (each running container's name and published ports), "--networks" (each
# Docker network's name, driver and subnets), "--routes" (the host's IPv4 routes),
# "--firewall" (ufw's status line, nftables' tables). A missing tool leaves its section empty.
echo --listen
ss -Hltnp 2> /dev/null
echo --containers
docker ps --format '{{.Names}}	{{.Ports}}' 2> /dev/null
echo --networks
docker network ls -q 2> /dev/null | xargs -r docker network inspect \
  --format '{{.Name}}	{{.Driver}}	{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2> /dev/null
echo --routes
ip -4 route show 2> /dev/null
echo --firewall
if command -v ufw > /dev/null 2>&1; then ufw status 2> /dev/null | head -n 1; fi
if command -v nft > /dev/null 2>&1; then nft list tables 2> /dev/null; fi
exit 0
