#!/usr/bin/env bash
# Start a Docker engine for the docker provider when none answers (run as root).
# Its bridge takes 198.19.255.1/24 (RFC 2544 range, the top of the labs' 198.18.0.0/15),
# never a 172.16/12 default; it adds no iptables rules and leaves ip_forward alone, since
# lab networks are internal and need neither NAT nor forwarding on the host.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd-up: no dockerd (apt-get install docker.io)" >&2; exit 1; }
log=/var/log/connlab-dockerd.log
nohup dockerd --bip 198.19.255.1/24 --iptables=false --ip-forward=false --ip-masq=false \
  --default-address-pool base=198.19.254.0/24,size=28 >"$log" 2>&1 &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd-up: dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2
exit 1
