/**
 * Text generated from the settings model: the --help of every entry point and the README table,
 * so the documentation of a variable cannot drift from the variable.
 */
import type { Role, Section } from './settings';
import { describeVariables, ROLES, SHARED_SECTIONS } from './settings';

/** The sections a process running `roles` reads. */
export function sectionsOf(roles: readonly Role[]): Section[] {
  return [...SHARED_SECTIONS, ...roles];
}

/** `--help` text of a process: what it is, its roles, and every variable it reads. */
export function formatHelp(
  usage: string,
  description: string,
  roles: readonly Role[],
  flags: readonly string[] = [],
): string {
  const vars = describeVariables(sectionsOf(roles));
  const width = Math.max(...vars.map((v) => v.name.length));
  const lines = vars.map(
    (v) => `  ${v.name.padEnd(width)}  ${v.description}${v.default === undefined ? '' : ` [default: ${v.default}]`}`,
  );
  const options = flags.length ? `Options:\n${flags.map((f) => `  ${f}`).join('\n')}\n\n` : '';
  return (
    `Usage: ${usage}\n\n${description}\n\nRoles: ${roles.join(', ')}\n\n${options}` +
    `Settings (environment variables, read once at start):\n${lines.join('\n')}\n`
  );
}

/** Prints the help and exits 0 when argv asks for it, before anything connects or listens. */
export function printHelpIfAsked(
  argv: readonly string[],
  usage: string,
  description: string,
  roles: readonly Role[],
  flags: readonly string[] = [],
): void {
  if (!argv.some((a) => a === '--help' || a === '-h')) return;
  process.stdout.write(formatHelp(usage, description, roles, flags));
  process.exit(0);
}

const SECTION_LABELS: Record<Section, string> = {
  common: 'every process',
  temporal: 'every process',
  kafka: 'every process',
  registry: 'every process',
  postgres: 'every process',
  stack: 'stack tool (and every default)',
  provision: 'provisioning',
  saga: 'saga worker',
  orders: 'orders worker',
  inventory: 'inventory worker',
  payments: 'payments worker',
  notifications: 'notifications worker',
  ingress: 'ingress',
  api: 'API',
  eventStore: 'event store',
  loyalty: 'loyalty service',
  outboxCleaner: 'outbox cleaner',
};

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The README's settings table (Markdown, before Prettier aligns it): every variable of every role. */
export function settingsMarkdownTable(): string {
  const vars = describeVariables([...SHARED_SECTIONS, ...ROLES]);
  const rows = vars.map((v) => {
    const users = [...new Set(v.sections.map((s) => SECTION_LABELS[s]))].join(', ');
    return `| \`${v.name}\` | ${cell(users)} | ${v.default === undefined ? '' : `\`${cell(v.default)}\``} | ${cell(v.description)} |`;
  });
  return ['| variable | read by | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
