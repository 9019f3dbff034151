// ICMP errors that belong to a cached flow (conntrack's RELATED): "fragmentation
// needed", "packet too big", "port unreachable", "time exceeded" about a packet
// of an allowed connection must reach its sender even when policy would not
// allow ICMP on its own — path MTU discovery depends on it. The error quotes the
// offending packet's IP header and the first 8 bytes of its L4 header, which is
// enough for the flow key (ports, or an echo's identifier).

import type { FlowKey } from '../packet/flow-key.js';
import type { FlowKeyParser } from '../packet/flow-key-parser.js';
import { icmpPeerType } from '../packet/icmp.js';
import { IpProto } from '../packet/proto.js';

const ICMP_HEADER = 8;
const V4_MIN = 20;
const V6_HEADER = 40;
const QUOTED_L4 = 8;

/**
 * Fills `out` with the key of the packet quoted by the ICMP/ICMPv6 error just
 * parsed (parsed.icmpError). Returns false when the quote is too short, not the
 * same IP version, or a protocol whose key cannot be read from it.
 */
export function quotedFlowKey(buf: Buffer, parsed: FlowKeyParser, out: FlowKey): boolean {
  const q = parsed.l4Offset + ICMP_HEADER;
  const avail = parsed.l4Length - ICMP_HEADER;
  if (avail < 1 || q >= buf.length) return false;
  out.clear();
  let l4: number;
  if (parsed.family === 4) {
    if ((buf[q] >> 4) !== 4) return false;
    const ihl = (buf[q] & 0x0f) << 2;
    if (ihl < V4_MIN || avail < ihl + QUOTED_L4) return false;
    if ((buf.readUInt16BE(q + 6) & 0x1fff) !== 0) return false; // a non-first fragment: no ports to read
    out.family = 4;
    out.protocol = buf[q + 9];
    out.src0 = buf.readInt32BE(q + 12);
    out.dst0 = buf.readInt32BE(q + 16);
    l4 = q + ihl;
  } else {
    if ((buf[q] >> 4) !== 6 || avail < V6_HEADER + QUOTED_L4) return false;
    out.family = 6;
    out.protocol = buf[q + 6];
    out.src0 = buf.readInt32BE(q + 8); out.src1 = buf.readInt32BE(q + 12);
    out.src2 = buf.readInt32BE(q + 16); out.src3 = buf.readInt32BE(q + 20);
    out.dst0 = buf.readInt32BE(q + 24); out.dst1 = buf.readInt32BE(q + 28);
    out.dst2 = buf.readInt32BE(q + 32); out.dst3 = buf.readInt32BE(q + 36);
    l4 = q + V6_HEADER;
  }
  switch (out.protocol) {
    case IpProto.TCP: case IpProto.UDP: case IpProto.SCTP: case UDPLITE:
      out.srcPort = buf.readUInt16BE(l4);
      out.dstPort = buf.readUInt16BE(l4 + 2);
      return true;
    case IpProto.ICMP: case IpProto.ICMPv6: {
      if ((out.protocol === IpProto.ICMPv6) !== (out.family === 6)) return false;
      out.icmpType = buf[l4];
      out.icmpCode = buf[l4 + 1];
      if (icmpPeerType(out.family, out.icmpType) < 0) return false; // only echo-style queries are flows
      out.srcPort = out.dstPort = buf.readUInt16BE(l4 + 4);
      return true;
    }
    default:
      return false;
  }
}

const UDPLITE = 136;
