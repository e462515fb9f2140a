import fs from 'node:fs';
import path from 'node:path';

// The README's tracing example is what test/tracing/one-trace.test.ts runs: its lines (imports
// aside) appear, in order, in the test or its service; each name it imports is exported there.
const ROOT = path.resolve(__dirname, '../..');
const MODULES: Record<string, string> = {
  '@opentelemetry/api': '@opentelemetry/api',
  '@twopc/participant-sdk': path.join(ROOT, 'participant-sdk/src'),
  '@twopc/participant-sdk/client': path.join(ROOT, 'participant-sdk/src/client'),
};

function tracingBlocks(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Tracing\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'));

describe('README tracing section', () => {
  const blocks = tracingBlocks();
  const ran = [fs.readFileSync(path.join(__dirname, 'one-trace.test.ts'), 'utf8'), fs.readFileSync(path.join(__dirname, 'traced-service.ts'), 'utf8')].map(lines);

  it('has the client and the service example', () => {
    expect(blocks).toHaveLength(2);
  });

  it('shows lines the tracing test runs, in order', () => {
    for (const block of blocks) {
      const code = lines(block).filter((l) => !l.startsWith('import '));
      const found = ran.some((file) => {
        const at = file.indexOf(code[0]);
        return at !== -1 && JSON.stringify(file.slice(at, at + code.length)) === JSON.stringify(code);
      });
      expect({ block: code[0], found }).toEqual({ block: code[0], found: true });
    }
  });

  it('imports only what the packages export', () => {
    for (const block of blocks) {
      for (const m of block.matchAll(/^import \{([^}]+)\} from '([^']+)';$/gm)) {
        const exported = require(MODULES[m[2]]) as Record<string, unknown>;
        const names = m[1].split(',').map((n) => n.trim());
        expect({ from: m[2], missing: names.filter((n) => exported[n] === undefined) }).toEqual({ from: m[2], missing: [] });
      }
    }
  });
});
