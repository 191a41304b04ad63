import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');
/** The folders tsconfig.json compiles; nothing else is TypeScript of ours. */
const SOURCE_DIRS = ['src', 'workflows', 'workers', 'test', 'bench'];

const compilerOptions = (() => {
  const configFile = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  return ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT).options;
})();

function repoTsFiles(): string[] {
  return SOURCE_DIRS.flatMap((dir) =>
    readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .map((f) => path.join(dir, f)),
  ).sort();
}

interface Imports {
  /** Repository files imported as values (what a bundle or Node really loads), repo-relative. */
  files: string[];
  /** Repository files imported as types only (erased at compile time, so they load nothing). */
  typeFiles: string[];
  /** Package specifiers imported as values. */
  packages: string[];
}

/** The imports of one file, resolved the way TypeScript resolves them. */
function importsOf(file: string): Imports {
  const absolute = path.join(ROOT, file);
  const source = ts.createSourceFile(file, readFileSync(absolute, 'utf8'), ts.ScriptTarget.ES2022);
  const result: Imports = { files: [], typeFiles: [], packages: [] };
  for (const statement of source.statements) {
    let typeOnly: boolean;
    if (ts.isImportDeclaration(statement)) typeOnly = statement.importClause?.isTypeOnly ?? false;
    else if (ts.isExportDeclaration(statement)) typeOnly = statement.isTypeOnly;
    else continue;
    const specifier = statement.moduleSpecifier;
    if (!specifier || !ts.isStringLiteral(specifier)) continue;
    const resolved = ts.resolveModuleName(specifier.text, absolute, compilerOptions, ts.sys).resolvedModule;
    const target = resolved ? path.relative(ROOT, resolved.resolvedFileName) : undefined;
    if (target && !resolved?.isExternalLibraryImport && !target.startsWith('..')) {
      (typeOnly ? result.typeFiles : result.files).push(target);
    } else if (!typeOnly) {
      result.packages.push(specifier.text);
    }
  }
  return result;
}

/**
 * The files ESLint applies the workflow sandbox rules to (the override whose import patterns forbid
 * Node builtins), asked of ESLint itself with the repository's own config, in one child process.
 */
function filesUnderSandboxRules(files: string[]): Set<string> {
  const script = `
    import { ESLint } from 'eslint';
    const eslint = new ESLint({ cwd: process.cwd() });
    const files = JSON.parse(process.argv[1]);
    const sandboxed = [];
    for (const file of files) {
      const config = await eslint.calculateConfigForFile(file);
      const rule = config?.rules?.['no-restricted-imports'];
      const patterns = Array.isArray(rule) ? (rule[1]?.patterns ?? []) : [];
      if (patterns.some((p) => (p.group ?? []).includes('node:*'))) sandboxed.push(file);
    }
    process.stdout.write(JSON.stringify(sandboxed));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(files)], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return new Set(JSON.parse(out) as string[]);
}

/** Cycles among the given edges: each strongly connected component of more than one file, or a self-import. */
function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe('module graph', () => {
  const files = repoTsFiles();
  const imports = new Map(files.map((f) => [f, importsOf(f)]));
  /** What loads what at run time. */
  const graph = new Map(files.map((f) => [f, imports.get(f)!.files]));

  describe('the workflow sandbox lint', () => {
    const sandboxed = filesUnderSandboxRules(files);
    const isTest = (f: string) => f.endsWith('.test.ts');
    // Workflow modules: what the lint treats as such, and any other module that calls into
    // @temporalio/workflow at run time (only workflow code can).
    const entries = files.filter(
      (f) => sandboxed.has(f) || (!isTest(f) && imports.get(f)!.packages.includes('@temporalio/workflow')),
    );

    it('covers the modules every workflow bundle of the repository is built from', () => {
      // The entry points passed as workflowsPath (production, benchmark, tests' workflows and variants).
      const bundled = [
        'workflows/index.ts',
        'bench/saga-baseline-workflow.ts',
        ...files.filter((f) => f.startsWith('test/support/workflows/')),
      ];
      expect(bundled.filter((f) => !sandboxed.has(f))).toEqual([]);
      // And what they load, e.g. the shared contract.
      expect([...sandboxed]).toEqual(
        expect.arrayContaining([
          'src/shared/saga-contract.ts',
          'workflows/order-saga.ts',
          'workflows/saga-machinery.ts',
        ]),
      );
    });

    it('covers every file a workflow module loads, followed import by import', () => {
      const reachedOutside: string[] = [];
      const seen = new Set<string>();
      const walk = (file: string, from: string[]): void => {
        if (seen.has(file)) return;
        seen.add(file);
        if (!sandboxed.has(file)) reachedOutside.push([...from, file].join(' → '));
        for (const next of graph.get(file) ?? []) walk(next, [...from, file]);
      };
      for (const entry of entries) walk(entry, []);
      expect(reachedOutside).toEqual([]);
    });
  });

  it('follows value imports and leaves out type-only ones (activities reach workflows as types only)', () => {
    const saga = imports.get('workflows/order-saga.ts')!;
    expect(saga.files).toEqual(expect.arrayContaining(['workflows/saga-machinery.ts', 'src/shared/saga-contract.ts']));
    expect(saga.files.filter((f) => f.includes('activities'))).toEqual([]);
    expect(saga.typeFiles).toEqual(expect.arrayContaining(['src/services/orders/orders-activities.ts']));
    expect(saga.packages).toContain('@temporalio/workflow');
  });

  it('has no import cycles, not even through type-only imports', () => {
    const everyImport = new Map(files.map((f) => [f, [...imports.get(f)!.files, ...imports.get(f)!.typeFiles]]));
    expect(importCycles(everyImport)).toEqual([]);
  });
});
