// Flow logs: one structured pino record per flow verdict worth telling — a denied
// flow, an allowed one that matched a Log rule (or any, with `logAllowed`), and
// a cached flow whose verdict a policy change flipped. Never per packet: a
// record is written when a verdict is installed, at most `rate` per second
// (token bucket, `burst` at once); what the bucket refuses is counted and
// reported by a summary line at most once per second (tick()).

import type { Logger } from 'pino';
import { IpProto, protoName } from '../packet/proto.js';
import { formatWords } from '../policy/ip.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { DECISION_NAMES, Decision, Side } from '../workers/batch-format.js';
import { FlowState, type FlowEntry } from './flow-entry.js';
import { TokenBucket } from './token-bucket.js';

export interface FlowLogOptions {
  /** Records per second (default 100). */
  rate?: number;
  /** Records allowed at once (default 200). */
  burst?: number;
  /** Log every new allowed flow too (debug; default false). */
  logAllowed?: boolean;
}

/** Why a verdict was installed. */
export type FlowCause = 'new' | 'policy-change';

export interface SideRecord {
  decision: (typeof DECISION_NAMES)[number];
  policy?: string;
  rule?: number;
}

export interface FlowRecord {
  verdict: 'allow' | 'deny';
  cause: FlowCause;
  protocol: string;
  src: string;
  dst: string;
  srcPort?: number;
  dstPort?: number;
  icmpType?: number;
  icmpCode?: number;
  srcEndpoint?: string;
  dstEndpoint?: string;
  egress?: SideRecord;
  ingress?: SideRecord;
  log?: { direction: 'egress' | 'ingress'; policy?: string; rule: number };
  generation: number;
  packets: number;
  bytes: number;
}

const SUMMARY_INTERVAL_MS = 1000;
const words = new Uint32Array(4);

function addr(family: number, a: number, b: number, c: number, d: number): string {
  words[0] = a; words[1] = b; words[2] = c; words[3] = d;
  return formatWords(family === 6 ? 6 : 4, words);
}

function side(d: Decision, policy: string | undefined, rule: number): SideRecord | undefined {
  if (d === Decision.NotChecked) return undefined;
  const r: SideRecord = { decision: DECISION_NAMES[d] };
  if (policy !== undefined) r.policy = policy;
  if (rule >= 0) r.rule = rule;
  return r;
}

export class FlowLog {
  readonly logAllowed: boolean;
  /** Records written. */
  logged = 0;
  /** Records refused by the rate limit, in total. */
  suppressed = 0;
  #unreported = 0;
  #lastSummary = -Infinity;
  readonly #bucket: TokenBucket;

  constructor(readonly logger: Logger | undefined, opts: FlowLogOptions = {}, now = 0) {
    this.logAllowed = opts.logAllowed ?? false;
    this.#bucket = new TokenBucket(opts.rate ?? 100, opts.burst ?? 200, now);
  }

  /**
   * A verdict was installed on `e` (its state is the new one). `previous` is the
   * state before (Pending for a new flow); logSide/logPolicy/logRule name the first
   * Log rule that matched (logSide 0: none).
   */
  decided(
    e: FlowEntry, cause: FlowCause, previous: FlowState, logSide: number, logPolicy: string | undefined, logRule: number,
    snapshot: PolicySnapshot | undefined, now: number,
  ): void {
    const logger = this.logger;
    if (logger === undefined || !this.wants(cause, previous, e.state, logSide)) return;
    const denied = e.state === FlowState.Denied || e.state === FlowState.Revoked;
    if (!this.#bucket.take(now)) {
      this.suppressed++;
      this.#unreported++;
      return;
    }
    this.logged++;
    const rec = this.record(e, cause, logSide, logPolicy, logRule, snapshot);
    const msg = denied ? 'flow denied' : logSide !== 0 ? 'flow logged' : 'flow allowed';
    if (denied) logger.warn(rec, msg);
    else logger.info(rec, msg);
  }

  /**
   * Would decided() write a record for a flow whose state went from `previous` to `state`
   * (before the rate limit)? Lets the caller skip building the FlowEntry.
   */
  wants(cause: FlowCause, previous: FlowState, state: FlowState, logSide: number): boolean {
    if (this.logger === undefined) return false;
    const denied = state === FlowState.Denied || state === FlowState.Revoked;
    return cause === 'new'
      ? denied || logSide !== 0 || this.logAllowed
      : previous !== state || (this.logAllowed && logSide !== 0);
  }

  /** Writes the summary of suppressed records, at most once per second. Call periodically. */
  tick(now: number): void {
    if (this.#unreported === 0 || this.logger === undefined || now - this.#lastSummary < SUMMARY_INTERVAL_MS) return;
    this.#lastSummary = now;
    this.logger.warn({ suppressed: this.#unreported, suppressedTotal: this.suppressed }, 'flow log: records suppressed by the rate limit');
    this.#unreported = 0;
  }

  /** The structured record of a flow (also for /flows). */
  record(
    e: FlowEntry, cause: FlowCause, logSide: number, logPolicy: string | undefined, logRule: number,
    snapshot: PolicySnapshot | undefined,
  ): FlowRecord {
    const src = addr(e.family, e.src0, e.src1, e.src2, e.src3);
    const dst = addr(e.family, e.dst0, e.dst1, e.dst2, e.dst3);
    const rec: FlowRecord = {
      verdict: e.state === FlowState.Allowed ? 'allow' : 'deny',
      cause,
      protocol: protoName(e.protocol),
      src,
      dst,
      generation: e.generation,
      packets: e.fwdPackets + e.revPackets,
      bytes: e.fwdBytes + e.revBytes,
    };
    if (e.protocol === IpProto.ICMP || e.protocol === IpProto.ICMPv6) {
      rec.icmpType = e.icmpType;
      rec.icmpCode = e.icmpCode;
    } else if (e.srcPort !== 0 || e.dstPort !== 0) {
      rec.srcPort = e.srcPort;
      rec.dstPort = e.dstPort;
    }
    const srcEp = e.from?.key ?? endpointAt(snapshot, src);
    const dstEp = e.to?.key ?? endpointAt(snapshot, dst);
    if (srcEp !== undefined) rec.srcEndpoint = srcEp;
    if (dstEp !== undefined) rec.dstEndpoint = dstEp;
    const eg = side(e.egress, e.egressPolicy, e.egressRule);
    const ing = side(e.ingress, e.ingressPolicy, e.ingressRule);
    if (eg !== undefined) rec.egress = eg;
    if (ing !== undefined) rec.ingress = ing;
    if (logSide !== 0) {
      rec.log = { direction: logSide === Side.Egress ? 'egress' : 'ingress', rule: logRule };
      if (logPolicy !== undefined) rec.log.policy = logPolicy;
    }
    return rec;
  }
}

function endpointAt(s: PolicySnapshot | undefined, ip: string): string | undefined {
  if (s === undefined) return undefined;
  const i = s.endpointByIP.get(ip);
  return i === undefined ? undefined : s.endpoints[i].key;
}
