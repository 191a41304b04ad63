// @ts-check
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

import js from '@eslint/js';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import ts from 'typescript';
import tseslint from 'typescript-eslint';

/**
 * Modules Temporal bundles as workflow code (every `workflowsPath` in the repository lives here): the
 * orchestrator's workflows, the benchmark's baseline workflow and the tests' workflows and saga variants.
 */
const WORKFLOW_ENTRIES = [
  { dir: 'workflows', name: /\.ts$/ },
  { dir: 'bench', name: /-workflow\.ts$/ },
  { dir: 'test/support/workflows', name: /\.ts$/ },
];

/**
 * Every repository file the workflow bundle loads: the entries and whatever they import as values,
 * followed file to file (type-only imports are erased, so they are not bundled). Derived rather than
 * listed so a module workflow code starts importing (the saga contract importing the service
 * registry, say) comes under the sandbox rules the moment it is imported.
 * test/unit/workflow-sandbox.test.ts checks this against TypeScript's own module resolution.
 */
function workflowSandboxFiles() {
  const root = import.meta.dirname;
  const seen = new Set();
  const queue = WORKFLOW_ENTRIES.flatMap(({ dir, name }) =>
    existsSync(path.join(root, dir))
      ? readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
          .filter((f) => name.test(f))
          .map((f) => path.join(dir, f))
      : [],
  );
  while (queue.length > 0) {
    const file = /** @type {string} */ (queue.pop());
    if (seen.has(file)) continue;
    seen.add(file);
    const source = ts.createSourceFile(file, readFileSync(path.join(root, file), 'utf8'), ts.ScriptTarget.ES2022);
    for (const statement of source.statements) {
      const isValueImport =
        (ts.isImportDeclaration(statement) && !statement.importClause?.isTypeOnly) ||
        (ts.isExportDeclaration(statement) && !statement.isTypeOnly && statement.moduleSpecifier);
      if (!isValueImport || !statement.moduleSpecifier || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
      const specifier = statement.moduleSpecifier.text;
      if (!specifier.startsWith('.')) continue; // a package: the import patterns below judge it
      const target = path.join(path.dirname(file), specifier);
      const resolved = [`${target}.ts`, path.join(target, 'index.ts')].find((f) => existsSync(path.join(root, f)));
      if (resolved) queue.push(resolved);
    }
  }
  return [...seen].sort();
}
const WORKFLOW_SANDBOX_FILES = workflowSandboxFiles();

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.stack/**', 'coverage/**', '*.config.*', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // One import order everywhere (Node builtins, packages, then our own modules), so a diff that adds an
    // import never reshuffles the block and a reader knows where to look.
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: { 'simple-import-sort/imports': 'error' },
  },
  {
    // Outside the bundle, @temporalio/workflow's functions cannot work (they need the sandbox's context).
    // A module using them is workflow code and must sit where the sandbox rules below reach it.
    files: ['**/*.ts'],
    ignores: WORKFLOW_SANDBOX_FILES,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@temporalio/workflow',
              allowTypeImports: true,
              message:
                'Workflow code belongs in a module the workflow bundle loads (workflows/, bench/*-workflow.ts, test/support/workflows/), under the sandbox rules; elsewhere import it as types only.',
            },
          ],
        },
      ],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O libraries, no Node builtins,
    // and activities only as types (proxyActivities<typeof acts>).
    files: WORKFLOW_SANDBOX_FILES,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Node builtins are not available in the workflow sandbox.' },
            {
              // Bare names only, matched whole: a folder of ours called events/ or path/ is no builtin.
              regex: `^(?:${builtinModules.join('|')})(?:/.*)?$`,
              message: 'Node builtins are not available in the workflow sandbox.',
            },
            {
              regex: '^(?:pg|kafkajs|avsc|pino|prom-client)(?:/.*)?$',
              message: 'I/O libraries belong in activities, not workflows.',
            },
            {
              group: ['**/*-activities', '**/all-activities'],
              allowTypeImports: true,
              message: 'Workflows may import activities as types only (proxyActivities<typeof acts>).',
            },
          ],
        },
      ],
    },
  },
);
