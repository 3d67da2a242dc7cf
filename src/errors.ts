/**
 * The one error type headlens throws for bad input. `message` names the problem, `fix` says what to do;
 * the CLI prints both on one line and exits with code 2.
 */
export class HeadlensError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
  ) {
    super(fix ? `${message} (${fix})` : message);
    this.name = 'HeadlensError';
  }
}
