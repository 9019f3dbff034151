// The manual: man-page style sections (DESCRIPTION, EXAMPLES, EXIT STATUS…) added
// after each command's generated --help, kept in one place so they read as one text.
import type { Command } from 'commander';

export const MANUAL: Record<string, string> = {
  '': `
DESCRIPTION
  Sluice is a userspace network dataplane: a daemon per host owns one TUN device per
  workload, carries traffic between hosts in UDP tunnels (VXLAN compatible with the Linux
  kernel's, or Flannel's udp format) and enforces Kubernetes and Calico network policy
  statefully. It needs /dev/net/tun and CAP_NET_ADMIN, no kernel module.

EXAMPLES
  sluice lab up && sluice lab exec demo/h1-a -- ping -c 3 10.244.2.2
  sluice daemon --config /etc/sluice/cluster.yaml --host h1
  sluice status; sluice flows --deny-only; sluice trace --from x/a --to y/b --port 80

SEE ALSO
  README.md (configuration, policy order), docs/policy-order.md, bench/RESULTS.md`,
  daemon: `
DESCRIPTION
  Runs the dataplane of one host until SIGINT or SIGTERM, which remove every device it
  made (with --persist-tun the pods' TUN devices stay, and the next daemon re-attaches
  to them: pods keep their interfaces across a restart). With --store file it reads and watches the cluster YAML; with --store etcd it
  first acquires this host's subnet lease (Flannel's layout under --etcd-prefix) and
  follows the store's watch. A change to peers, endpoints or policies is applied live;
  an invalid one is logged with the field that is wrong and changes nothing. If the
  store becomes unreachable, forwarding and enforcement go on with the last state.

EXAMPLES
  sluice daemon --config cluster.yaml --host h1
  sluice daemon --store etcd --etcd http://10.0.0.5:2379 --public-ip 10.0.0.11 --host node1
  sluice daemon --config cluster.yaml --host h1 --api unix:/run/sluice.sock --policy-mode inline
  sluice daemon --config cluster.yaml --host h1 --persist-tun --datapath-threads 2 --realtime 10
  sluice daemon --config cluster.yaml --host h1 --datapath-threads 2 --no-main-fast-path --busy-poll 300

EXIT STATUS
  0 stopped by a signal; 1 refused to start (the message names the bad flag or field);
  75 the subnet lease came back with a different subnet (restart to re-address).`,
  'lab up': `
DESCRIPTION
  Builds a lab on this machine: an underlay bridge in NAME-ul, N hosts (NAME-h1…) each
  running a daemon, and pods (NAME-NS-POD) from Kubernetes manifests or a demo of two
  pods per host. Policies in the manifests are enforced. Needs root.

EXAMPLES
  sluice lab up --hosts 3 --backend udp
  sluice lab up -f examples/demo-policy.yaml --json
  sluice lab up --name big --daemon-arg=--policy-mode=inline
  sluice lab up --store etcd -f examples/demo-policy.yaml   # etcd in NAME-ul, daemons lease their subnets`,
  'lab restart': `
EXAMPLES
  sluice lab restart h2          # the host's daemon, with its original flags; it keeps its subnet
  sluice lab restart etcd        # etcd on the same data (an outage the daemons ride out)`,
  'lab exec': `
EXAMPLES
  sluice lab exec demo/h1-a -- ping -c 3 10.244.2.2
  sluice lab exec h1 -- sluice status          # a host's namespace: its daemon's API`,
  'lab down': `
DESCRIPTION
  Stops the daemons the lab started (only if their PID still is that process) and
  deletes every namespace with the lab's prefix, also after a crash. Idempotent.`,
  status: `
EXAMPLES
  sluice status
  ip netns exec sluice-h1 sluice status --json`,
  flows: `
DESCRIPTION
  The flow cache, like conntrack -L: one line per flow with its verdict, the policy and
  rule that decided it, and packet and byte counters of both directions.`,
  trace: `
DESCRIPTION
  Evaluates a flow with the daemon's current policy, exactly as the data path would,
  and shows the route its packets take (switched locally, or which tunnel to which host).

EXAMPLES
  sluice trace --from x/a --to y/b --port 80
  sluice trace --from x/a --to 10.0.0.9 --protocol UDP --port 53 --json`,
  'policy check': `
EXAMPLES
  sluice policy check -f manifests/ --from x/a --to y/b --protocol TCP --port 80

EXIT STATUS
  0 the verdict was printed (allowed or denied); 2 bad input (the message names it).`,
  'policy matrix': `
EXAMPLES
  sluice policy matrix -f manifests/ --ports TCP/80,TCP/81,UDP/80
  sluice policy matrix -f manifests/ --json | jq '.[] | select(.allowed | not)'`,
  apply: `
DESCRIPTION
  Validates every manifest first (Kubernetes and Calico rules, pod addresses); an invalid
  set is refused whole and nothing is written. Valid sets are written in one transaction.

EXIT STATUS
  0 written; 1 etcd unreachable; 2 invalid input.`,
};

/** Appends each command's manual section to its --help. */
export function addManual(program: Command): void {
  const visit = (cmd: Command, path: string[]) => {
    const text = MANUAL[path.join(' ')];
    if (text) cmd.addHelpText('after', text);
    for (const sub of cmd.commands) visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
}
