// Address conversions between the strings of configs and the numbers of the data path.
import ipaddr from 'ipaddr.js';

/** IPv4 dotted quad → signed 32-bit integer (what `readInt32BE` yields from a packet). */
export function ipv4ToInt32(text: string): number {
  const b = ipaddr.IPv4.parse(text).toByteArray();
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) | 0;
}

/** IPv4 dotted quad → unsigned 32-bit integer (the native UDP API's form). */
export function ipv4ToUint32(text: string): number {
  return ipv4ToInt32(text) >>> 0;
}

/** IPv6 text → four signed 32-bit words, most significant first. */
export function ipv6ToWords(text: string): Int32Array {
  const b = ipaddr.IPv6.parse(text).toByteArray();
  const w = new Int32Array(4);
  for (let i = 0; i < 4; i++) w[i] = (b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3];
  return w;
}
