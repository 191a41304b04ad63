// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // Workflow code runs in Temporal's deterministic sandbox: no I/O libraries, no Node builtins,
    // and activities only as types (proxyActivities<typeof acts>).
    files: ['workflows/**/*.ts', 'test/support/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Node builtins are not available in the workflow sandbox.' },
            {
              group: [
                'fs',
                'fs/*',
                'path',
                'os',
                'crypto',
                'child_process',
                'net',
                'http',
                'https',
                'dns',
                'stream',
                'worker_threads',
                'events',
                'util',
                'timers',
                'process',
              ],
              message: 'Node builtins are not available in the workflow sandbox.',
            },
            {
              group: ['pg', 'kafkajs', 'avsc', 'pino', 'prom-client'],
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
