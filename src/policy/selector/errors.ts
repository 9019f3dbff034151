// Selector syntax errors carry the 1-based column of the offending token so that
// manifest errors can point at it ("... at column 12 in selector \"...\"").

export class SelectorSyntaxError extends Error {
  override readonly name = 'SelectorSyntaxError';
  readonly code = 'POLICY_ERR_SELECTOR_SYNTAX';

  constructor(
    /** What was wrong, without position (e.g. "unexpected token '&&'"). */
    readonly problem: string,
    /** 1-based column in `selector`. */
    readonly column: number,
    readonly selector: string,
    /** Optional hint of what the parser expected there. */
    readonly expected?: string,
  ) {
    super(`${problem} at column ${column} in selector ${JSON.stringify(selector)}${expected ? `: expected ${expected}` : ''}`);
  }
}
