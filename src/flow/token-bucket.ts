// A token bucket on an injected clock: `rate` tokens per second, at most `burst`.

export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(readonly rate: number, readonly burst: number, now: number) {
    if (!(rate > 0)) throw new TypeError(`TokenBucket: rate must be > 0 per second, got ${String(rate)}`);
    if (!(burst >= 1)) throw new TypeError(`TokenBucket: burst must be >= 1, got ${String(burst)}`);
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token if there is one (time `now`, ms). */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  #refill(now: number): void {
    if (now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
      this.#last = now;
    }
  }
}
