// Protocol numbers (IANA "Assigned Internet Protocol Numbers") and EtherTypes
// used by the packet views. Plain numbers: compare against `view.protocol()`.

export const IpProto = {
  HopOpts: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  Routing: 43,
  Fragment: 44,
  ESP: 50,
  AH: 51,
  ICMPv6: 58,
  NoNext: 59,
  DstOpts: 60,
  SCTP: 132,
} as const;

export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  IPv6: 0x86dd,
} as const;

/** Lower-case protocol name for logs ("tcp"), or the number as a string. */
export function protoName(p: number): string {
  switch (p) {
    case IpProto.ICMP: return 'icmp';
    case IpProto.TCP: return 'tcp';
    case IpProto.UDP: return 'udp';
    case IpProto.ICMPv6: return 'icmpv6';
    case IpProto.SCTP: return 'sctp';
    default: return String(p);
  }
}
