// Lint rules that keep the house in order (see DESIGN.md "The house"):
// imports flow common ← consensus ← ordering ← {sim, server, client}, and the pure
// layers (common, consensus, ordering) touch no disk, network, clock, timers or randomness.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'node:fs', 'node:fs/promises', 'fs', 'fs/promises', 'node:net', 'net', 'node:dgram', 'node:http', 'http',
  'node:timers', 'node:timers/promises', 'timers', 'node:child_process', 'node:worker_threads',
  'pino', 'prom-client', 'ws', 'uWebSockets.js', 'classic-level',
];
const pureRestrictions = {
  'no-restricted-globals': ['error',
    { name: 'setTimeout', message: 'pure cores take time as an input' },
    { name: 'setInterval', message: 'pure cores take time as an input' },
    { name: 'setImmediate', message: 'pure cores take time as an input' },
    { name: 'performance', message: 'pure cores take time as an input' },
    { name: 'process', message: 'pure cores do not touch the process' },
  ],
  'no-restricted-properties': ['error',
    { object: 'Date', property: 'now', message: 'pure cores take time as an input' },
    { object: 'Math', property: 'random', message: 'pure cores take randomness as an input' },
  ],
  'no-restricted-syntax': ['error',
    { selector: "NewExpression[callee.name='Date']", message: 'pure cores take time as an input' },
  ],
};
const layer = (files, forbiddenDirs, extra = {}) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', {
      paths: ioModules.map((name) => ({ name, message: 'no I/O in this layer (DESIGN.md: the house)' })),
      patterns: forbiddenDirs.map((dir) => ({ group: [`**/${dir}/**`, `../${dir}/*`], message: `this layer must not import ${dir}/` })),
    }],
    ...extra,
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'experiments/log/**', 'experiments/data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'eqeqeq': ['error', 'always'],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  layer(['common/**/*.ts'], ['consensus', 'ordering', 'sim', 'server', 'client', 'experiments', 'scripts'], pureRestrictions),
  layer(['consensus/**/*.ts'], ['ordering', 'sim', 'server', 'client', 'experiments', 'scripts'], pureRestrictions),
  layer(['ordering/**/*.ts'], ['sim', 'server', 'client', 'experiments', 'scripts'], pureRestrictions),
  {
    files: ['sim/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/server/**', '../server/*'], message: 'sim and server never import each other' }] }] },
  },
  {
    files: ['server/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/sim/**', '../sim/*'], message: 'sim and server never import each other' }] }] },
  },
  {
    // Tests may use clocks and randomness freely; they are not part of the pure cores.
    files: ['**/*.test.ts'],
    rules: { 'no-restricted-globals': 'off', 'no-restricted-properties': 'off', 'no-restricted-syntax': 'off' },
  },
);
