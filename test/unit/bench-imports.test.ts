import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const BENCH = path.join(__dirname, '..', '..', 'bench');

/**
 * Benchmarks measure the system as it ships: they start it through src/ (the same start function
 * as the real processes) and may not lean on test helpers, top-level worker files or each other's
 * internals from outside src/ and bench/. A benchmark's own workflow module (bench/*-workflow.ts)
 * may also build on the shipped saga body in workflows/, to price one of its pieces.
 */
describe('benchmarks', () => {
  const files = readdirSync(BENCH).filter((f) => f.endsWith('.ts'));

  it('exist', () => {
    expect(files).toEqual(
      expect.arrayContaining(['saga-throughput.ts', 'ingress-throughput.ts', 'saga-overhead.ts', 'codec.ts']),
    );
  });

  it.each(files)('%s imports only packages, src/ and bench/', (file) => {
    const text = readFileSync(path.join(BENCH, file), 'utf8');
    const relative = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']*)'/g)].map((m) => m[1]!);
    const allowed = ['../src/', './', ...(file.endsWith('-workflow.ts') ? ['../workflows/'] : [])];
    expect(relative.filter((r) => !allowed.some((a) => r.startsWith(a)))).toEqual([]);
  });

  it.each(['saga-throughput.ts', 'ingress-throughput.ts', 'saga-overhead.ts'])(
    '%s starts the system through startRoles',
    (file) => {
      const text = readFileSync(path.join(BENCH, file), 'utf8');
      expect(text).toMatch(/from '\.\.\/src\/app\/roles'/);
      expect(text).toMatch(/await startRoles\(/);
    },
  );
});
