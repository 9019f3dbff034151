// Lab errors carry a message meant for the user (what failed and what to do) and the exit code
// the CLI should end with. Anything else reaching the CLI is a bug and is printed with its stack.
export class LabError extends Error {
  constructor(message: string, readonly exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LabError';
  }
}
