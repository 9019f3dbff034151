#!/usr/bin/env bash
# The demo: a two-host lab on the embedded file store, traffic across it.
set -euo pipefail
cd "$(dirname "$0")/.."
sluice() { node dist/src/cli.js "$@"; }
sluice lab down --name demo >/dev/null 2>&1 || true
sluice lab up --name demo --hosts 2
echo
echo "== ping from demo/h1-a (host h1) to demo/h2-a (host h2), across the overlay"
sluice lab exec --name demo demo/h1-a -- ping -c 3 10.244.2.2
echo
echo "== TCP throughput, 3 s of iperf3 from h1-a to h2-a"
sluice lab exec --name demo demo/h2-a -- iperf3 -s -1 -D
sleep 0.5
sluice lab exec --name demo demo/h1-a -- iperf3 -c 10.244.2.2 -t 3 | tail -n 4
echo
echo "The lab stays up: try 'node dist/src/cli.js lab exec --name demo demo/h1-b -- ping 10.244.2.3',"
echo "and remove it with 'node dist/src/cli.js lab down --name demo'."
