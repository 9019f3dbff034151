// The host's own address in its subnet (the first one, as Flannel's cni0 has):
// the source of the ICMP errors the dataplane originates.
import ipaddr from 'ipaddr.js';
import { ipv4ToInt32 } from '../dataplane/addresses.js';

export function subnetGateway4(cidr: string): number {
  const [net] = ipaddr.IPv4.parseCIDR(cidr);
  return (ipv4ToInt32(net.toString()) + 1) | 0;
}

/** 16 bytes; all zero when the host has no IPv6 subnet (no IPv6 errors are then routable anyway). */
export function subnetGateway6(cidr: string | undefined): Buffer {
  const out = Buffer.alloc(16);
  if (cidr === undefined) return out;
  const [net] = ipaddr.IPv6.parseCIDR(cidr);
  Buffer.from(net.toByteArray()).copy(out);
  out[15] |= 1;
  return out;
}
