/** @type {import('jest').Config} */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  // The stack's data folder holds files Jest would otherwise index (PostgreSQL's *.snap files, say).
  modulePathIgnorePatterns: ['<rootDir>/.stack/', '<rootDir>/dist/'],
  ...extra,
});
// Layers that talk to the real servers bring the local stack up first (a no-op when it is healthy).
const withStack = { globalSetup: '<rootDir>/test/support/global-setup.ts' };

module.exports = {
  projects: [
    project('unit'),
    project('activities', withStack),
    project('workflows', withStack),
    project('replay', withStack),
    project('integration', withStack),
    project('e2e', withStack),
  ],
};
