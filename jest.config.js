/**
 * One suite: unit specs next to the code (`*.spec.ts`) and end-to-end specs in test/ (`*.e2e-spec.ts`). The
 * global setup starts one embedded PostgreSQL (or uses TEST_DATABASE_URL); each e2e file gets its own database.
 */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  testRegex: '(src|test|tools)/.*\\.(spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
