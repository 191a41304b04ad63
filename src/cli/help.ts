/**
 * `--help` for the long-running entry points (workers, ingress, API, event store, migrations), which
 * take their settings from the environment rather than from flags: print what the process is and
 * which variables it reads, then exit, before anything connects or listens.
 */
export function printHelpIfAsked(usage: string, description: string, settings: readonly string[]): void {
  if (!process.argv.slice(2).some((a) => a === '--help' || a === '-h')) return;
  process.stdout.write(
    `Usage: ${usage}\n\n${description}\n\nSettings (environment variables):\n${settings.map((s) => `  ${s}`).join('\n')}\n`,
  );
  process.exit(0);
}
