// Import rules of the project, checked by `npm run deps` (part of `npm test`) with
// dependency-cruiser: the tasks sit on tasks/lib, and tasks/lib never reaches back up.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle (type-only imports included): split the shared part into a module both can import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'lib-does-not-import-tasks',
      severity: 'error',
      comment: 'tasks/lib/ is what the tasks share: it never imports a task file (tasks/<step>.ts). Move what it needs into tasks/lib/.',
      from: { path: '^tasks/lib/' },
      to: { path: '^tasks/[^/]+\\.ts$' },
    },
    {
      name: 'a-task-does-not-import-a-task',
      severity: 'error',
      comment: 'A task file (tasks/<step>.ts) imports shared code from tasks/lib/ only; deploy-aws.ts alone composes the step files.',
      from: { path: '^tasks/[^/]+\\.ts$', pathNot: '^tasks/deploy-aws\\.ts$' },
      to: { path: '^tasks/[^/]+\\.ts$' },
    },
    {
      name: 'shipped-code-does-not-import-tests',
      severity: 'error',
      comment: 'tasks/ never imports tests/ or bench/.',
      from: { path: '^tasks/' },
      to: { path: '^(tests|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    // type-only imports count: a cycle through a type is still a cycle of the design
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
