import fs from 'node:fs';

/**
 * Live processes (zombies excluded) whose command line mentions `dir`, as "pid: command". Every
 * server the stack tool starts names its folder in its arguments (config, data or log paths), so
 * this is how a test proves that stopping a private server left nothing behind.
 */
export function processesMentioning(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = /State:\s+(\S)/.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmd.includes(dir) && state !== 'Z') found.push(`${entry}: ${cmd.slice(0, 160)}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
