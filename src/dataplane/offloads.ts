// Which kernel offloads the data path uses. All on by default; each one can be
// switched off (environment or options), and each falls back cleanly when the
// kernel refuses it (the endpoint / forwarder records what it actually got).
//
//   tun   IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6): pods' TCP arrives as
//         64 KiB super-packets, and super-packets go to pods whole
//   gso   UDP_SEGMENT: a super-packet (or a run of equal datagrams to one
//         peer) leaves in one sendmmsg message; the wire sees ordinary datagrams
//   gro   UDP_GRO on the underlay socket + coalescing received TCP segments
//         into super-packets (one TUN write each)
//
// Environment: SLUICE_OFFLOADS=off turns all off; SLUICE_OFFLOAD_TUN,
// SLUICE_OFFLOAD_GSO, SLUICE_OFFLOAD_GRO = on|off (1|0) set one each.

export interface Offloads {
  tun: boolean;
  gso: boolean;
  gro: boolean;
}

export const ALL_OFFLOADS: Readonly<Offloads> = Object.freeze({ tun: true, gso: true, gro: true });
export const NO_OFFLOADS: Readonly<Offloads> = Object.freeze({ tun: false, gso: false, gro: false });

const SWITCHES = { tun: 'SLUICE_OFFLOAD_TUN', gso: 'SLUICE_OFFLOAD_GSO', gro: 'SLUICE_OFFLOAD_GRO' } as const;

function flag(name: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'on' || t === '1' || t === 'true') return true;
  if (t === 'off' || t === '0' || t === 'false') return false;
  throw new TypeError(`${name}: expected on|off (or 1|0), got ${JSON.stringify(text)}`);
}

/** The offloads the environment asks for (defaults: all on). Throws a TypeError naming a bad variable. */
export function offloadsFromEnv(env: NodeJS.ProcessEnv = process.env): Offloads {
  const all = env.SLUICE_OFFLOADS === undefined ? true : flag('SLUICE_OFFLOADS', env.SLUICE_OFFLOADS);
  const o: Offloads = { tun: all, gso: all, gro: all };
  for (const k of Object.keys(SWITCHES) as (keyof Offloads)[]) {
    const v = env[SWITCHES[k]];
    if (v !== undefined) o[k] = flag(SWITCHES[k], v);
  }
  return o;
}

/** "tun,gso,gro" / "none": for logs. */
export function describeOffloads(o: Offloads): string {
  const on = (Object.keys(SWITCHES) as (keyof Offloads)[]).filter((k) => o[k]);
  return on.length ? on.join(',') : 'none';
}
