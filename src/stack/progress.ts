/**
 * One live line per component. On a terminal the block is redrawn in place; elsewhere (CI, pipes) a
 * line is printed when a component's state changes and every few seconds while it waits, so nobody
 * stares at a silent screen.
 */
export class ProgressBoard {
  private readonly rows = new Map<string, { text: string; since: number; done: boolean }>();
  private readonly tty: boolean;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastPlain = new Map<string, number>();

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  start(): void {
    this.timer = setInterval(() => this.render(), this.tty ? 250 : 5000);
    this.timer.unref();
  }

  update(name: string, text: string, done = false): void {
    const prev = this.rows.get(name);
    const changed = prev?.text !== text || prev.done !== done;
    this.rows.set(name, { text, since: prev && !changed ? prev.since : Date.now(), done });
    // Without a terminal, print state changes but at most one progress line per component every 2 s.
    const quiet = Date.now() - (this.lastPlain.get(name) ?? 0) < 2000;
    if (!this.tty && changed && (done || !quiet)) this.printPlain(name);
    if (this.tty) this.render();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) this.render();
  }

  private line(name: string): string {
    const row = this.rows.get(name);
    if (!row) return '';
    const mark = row.done ? '✔' : '…';
    const elapsed = row.done ? '' : ` (${Math.round((Date.now() - row.since) / 1000)}s)`;
    return `${mark} ${name.padEnd(9)} ${row.text}${elapsed}`;
  }

  private printPlain(name: string): void {
    this.lastPlain.set(name, Date.now());
    this.out.write(`${this.line(name)}\n`);
  }

  private render(): void {
    if (!this.tty) {
      for (const [name, row] of this.rows) if (!row.done) this.printPlain(name);
      return;
    }
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
    for (const name of this.rows.keys()) this.out.write(`\x1b[2K${this.line(name)}\n`);
    this.drawn = this.rows.size;
  }
}
