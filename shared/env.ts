/**
 * The WARDEN_* environment variables that belong to the tools around a member — the `warden`
 * CLI's global options, the variables `warden lock` gives the command it runs, `npm start`'s
 * base port — and not to `wardend`. A member reads every other WARDEN_* variable as a flag and
 * refuses one it does not know (a typo must not pass silently), so it sets these aside first: a
 * shell that exports WARDEN_ENDPOINTS for the CLI can still start a member.
 *
 * Must never: name a variable `wardend` reads as a flag (it would be ignored).
 */

export const NOT_WARDEND_ENV: readonly string[] = ['WARDEN_ENDPOINTS', 'WARDEN_OUTPUT', 'WARDEN_TIMEOUT', 'WARDEN_FENCING_TOKEN', 'WARDEN_LOCK_PATH', 'WARDEN_BASE_PORT'];
