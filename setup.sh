#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for pytest-connlab (run as root):
# nftables (the emulation's rules), iproute2 (tests read addresses), util-linux (setpriv),
# then the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")"
if command -v apt-get >/dev/null; then
  missing=""
  command -v nft >/dev/null || missing="$missing nftables"
  command -v ip >/dev/null || missing="$missing iproute2"
  command -v setpriv >/dev/null || missing="$missing util-linux"
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  fi
fi
python3 -m pip install -q -e '.[test]'
