// Protocol names and numbers as Calico and Kubernetes spell them.

export const TCP = 6, UDP = 17, SCTP = 132, ICMP = 1, ICMPV6 = 58, UDPLITE = 136;

const BY_NAME: ReadonlyMap<string, number> = new Map([
  ['tcp', TCP], ['udp', UDP], ['sctp', SCTP], ['icmp', ICMP], ['icmpv6', ICMPV6], ['udplite', UDPLITE],
]);

const NAMES: ReadonlyMap<number, string> = new Map([
  [TCP, 'TCP'], [UDP, 'UDP'], [SCTP, 'SCTP'], [ICMP, 'ICMP'], [ICMPV6, 'ICMPv6'], [UDPLITE, 'UDPLite'],
]);

/** Protocols whose packets carry ports (so port matches can apply). */
export function hasPorts(protocol: number): boolean {
  return protocol === TCP || protocol === UDP || protocol === SCTP || protocol === UDPLITE;
}

/** Calico protocol: a name (any case) or a number 1-255. Returns undefined if invalid. */
export function parseProtocol(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 255 ? value : undefined;
  if (/^[0-9]+$/.test(value)) return parseProtocol(Number(value));
  return BY_NAME.get(value.toLowerCase());
}

export function protocolName(protocol: number): string {
  return NAMES.get(protocol) ?? String(protocol);
}
