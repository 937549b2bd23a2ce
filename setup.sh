#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for pytest-connlab (run as root):
# nftables and iptables (the emulation's rules), iproute2 (tests read addresses), util-linux (setpriv),
# then the package with its test extras.
#
#   ./setup.sh              what netns labs need (the default provider)
#   ./setup.sh --providers  also what the docker, ssh and vagrant providers' tests need:
#                           docker.io (a dockerd is started on 198.19.255.1/24 when none
#                           answers, see scripts/dockerd-up.sh), debootstrap (then `connlab
#                           image build` makes the lab image, cached by content hash),
#                           openssh-server and vagrant, and for the vm provider qemu-system-x86
#                           (then `connlab image build --vm` makes the guest image: a Debian kernel,
#                           a debootstrapped root and a busybox initramfs, cached by content hash)
#   ./setup.sh --report     also what `connlab report` and its test need: Allure 3 from npm,
#                           pinned by report/package-lock.json, into report/node_modules
#                           (npm ci; called by path, never npx), and Debian's chromium
set -euo pipefail
cd "$(dirname "$0")"
providers=0
report=0
for arg in "$@"; do
  case "$arg" in
    --providers) providers=1 ;;
    --report) report=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --providers, --report)" >&2; exit 2 ;;
  esac
done
if command -v apt-get >/dev/null; then
  missing=""
  command -v nft >/dev/null || missing="$missing nftables"
  command -v ip >/dev/null || missing="$missing iproute2"
  command -v setpriv >/dev/null || missing="$missing util-linux"
  # the half-open outbound cap's NFQUEUE rule (this kernel has no nft queue statement)
  command -v ip6tables-legacy >/dev/null || missing="$missing iptables"
  # real third-party clients the lab-wide emulation tests check the lab with
  command -v curl >/dev/null || missing="$missing curl"
  command -v hping3 >/dev/null || missing="$missing hping3"
  command -v ab >/dev/null || missing="$missing apache2-utils"
  command -v wrk >/dev/null || missing="$missing wrk"
  command -v ping >/dev/null || missing="$missing iputils-ping"
  if [ "$providers" = 1 ]; then
    command -v dockerd >/dev/null || missing="$missing docker.io"
    command -v debootstrap >/dev/null || missing="$missing debootstrap"
    [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
    command -v vagrant >/dev/null || missing="$missing vagrant"
    command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
    command -v mke2fs >/dev/null || missing="$missing e2fsprogs"
    command -v ssh-keygen >/dev/null || missing="$missing openssh-client"
  fi
  if [ "$report" = 1 ]; then
    command -v chromium >/dev/null || missing="$missing chromium"
    command -v npm >/dev/null || missing="$missing npm"
  fi
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
fi
python3 -m pip install -q -e '.[test]'
if [ "$report" = 1 ]; then
  (cd report && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "$providers" = 1 ]; then
  ./scripts/dockerd-up.sh
  connlab image build
  connlab image build --vm
fi
