// The two kinds of failure a task reports (anything else is a bug and is printed in full):
//  - UserError: a problem the user can fix. One short message saying what to do, no stack.
//    Exit code 2 for configuration/environment problems, 1 otherwise.
//  - CommandError: a command that failed. Shown as `$ command`, its exit code and its stderr.

export class UserError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'UserError'
    this.exitCode = exitCode
  }
}

/** A configuration or command-line problem: exit code 2. */
export class ConfigError extends UserError {
  constructor(message: string) {
    super(message, 2)
    this.name = 'ConfigError'
  }
}

export class CommandError extends Error {
  readonly command: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stderr: string
  /** What we were doing, e.g. "build the web image" (optional). */
  readonly doing?: string
  constructor(opts: { command: string; exitCode: number | null; signal?: string | null; stderr: string; doing?: string }) {
    const status = opts.exitCode !== null ? `exit code ${opts.exitCode}` : `killed by ${opts.signal ?? 'a signal'}`
    super(`${opts.doing ? `could not ${opts.doing}: ` : ''}\`${opts.command}\` failed (${status})`)
    this.name = 'CommandError'
    this.command = opts.command
    this.exitCode = opts.exitCode
    this.signal = opts.signal ?? null
    this.stderr = opts.stderr
    this.doing = opts.doing
  }

  /**
   * The same failure with `secret` (a signed link, a token in the command line) replaced by
   * `shown` in the command and its output: what is reported must not hand it on.
   */
  hiding(secret: string, shown: string): CommandError {
    const hide = (text: string) => (secret ? text.split(secret).join(shown) : text)
    return new CommandError({ command: hide(this.command), exitCode: this.exitCode, signal: this.signal, stderr: hide(this.stderr), ...(this.doing ? { doing: hide(this.doing) } : {}) })
  }

  /** The report: what failed, `$ command`, exit code, and the last lines of its stderr. */
  format(maxLines = 30): string {
    const lines = this.stderr.trimEnd().split('\n')
    const tail = lines.length > maxLines ? ['...', ...lines.slice(-maxLines)] : lines
    const status = this.exitCode !== null ? `exit code ${this.exitCode}` : `killed by ${this.signal ?? 'a signal'}`
    return [
      ...(this.doing ? [`Could not ${this.doing}.`] : []),
      `$ ${this.command}`,
      status,
      ...(this.stderr.trim() ? ['stderr:', ...tail.map((l) => `  ${l}`)] : ['(no stderr output)']),
    ].join('\n')
  }
}
