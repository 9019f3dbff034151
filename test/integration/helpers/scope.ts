// A cleanup stack: every resource a test or bench creates registers how to undo itself, and
// close() undoes everything in reverse order, continuing past failures, so a failed setup still
// leaves nothing behind.

export class Scope {
  #steps: { what: string; undo: () => unknown }[] = [];
  #closing: Promise<Error[]> | undefined;

  /** True once close() has been called: nothing new should be created. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Registers an undo step; runs before the steps registered earlier. */
  defer(what: string, undo: () => unknown): void {
    if (this.#closing) throw new Error(`scope already closed; cannot defer "${what}"`);
    this.#steps.push({ what, undo });
  }

  /**
   * Runs every undo step (last first). Never throws: failures are returned, and also written to
   * stderr so that a cleanup problem is visible even when the caller is unwinding another error.
   * Calling it again returns the same result.
   */
  close(): Promise<Error[]> {
    this.#closing ??= (async () => {
      const errors: Error[] = [];
      for (const { what, undo } of this.#steps.reverse()) {
        try {
          await undo();
        } catch (err) {
          const e = new Error(`cleanup "${what}" failed: ${(err as Error).message ?? String(err)}`, { cause: err });
          errors.push(e);
          process.stderr.write(`${e.message}\n`);
        }
      }
      this.#steps = [];
      return errors;
    })();
    return this.#closing;
  }
}
