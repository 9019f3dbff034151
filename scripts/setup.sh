#!/usr/bin/env bash
# Installs the system tools Sluice and its tests use, from Debian's packages.
# Node.js, npm, python3, make and g++ (for the addon) come with the machine.
set -euo pipefail
packages=(iproute2 iputils-ping iperf3 etcd-server procps ethtool)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The etcd package starts a system etcd on the default ports; Sluice's tests run
# their own on ports of their own, so leave it be.
echo "setup: ok (${packages[*]})"
