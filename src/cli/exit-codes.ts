/** The CLI's exit statuses (README, Usage): scripts tell a bad file from a mistyped flag from a bug. */
export const EXIT = {
  badInput: 1,   // a file or model refused: unreadable, corrupt, over a limit
  usage: 2,      // an unknown option, a missing argument, an option value the parsers reject
  internal: 70,  // a bug (sysexits' EX_SOFTWARE)
} as const;
