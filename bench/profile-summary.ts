import fs from 'node:fs';
import path from 'node:path';

// Self-time summary of V8 .cpuprofile files (what `npm run bench -- --cpu-profile <dir>` writes):
// where the busy samples of a run went, by function and by file, without opening DevTools.
//
//   npx tsx bench/profile-summary.ts /tmp/prof/engine-round1.cpuprofile [--top 40] [--by file|function|twopc]
//
// `--by twopc` charges each sample to the innermost frame in twopc's own code (not node_modules,
// not node internals): what the project's code spends, the libraries it calls included.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

type By = 'file' | 'function' | 'twopc';

const IDLE = new Set(['(idle)', '(program)']);

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) return file.slice(nm + 'node_modules/'.length);
  return path.relative(process.cwd(), file) || file;
}

function isOwn(url: string): boolean {
  return url !== '' && !url.includes('node_modules') && !url.startsWith('node:') && url.includes('/');
}

function label(frame: CallFrame, by: By): string {
  if (by === 'file') return shortUrl(frame.url);
  return `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

export function summarize(profile: CpuProfile, by: By): { total: number; busy: number; rows: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map<string, number>();
  let busy = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    let node = byId.get(id)!;
    if (IDLE.has(node.callFrame.functionName)) return;
    busy += us;
    if (by === 'twopc') {
      let at: ProfileNode | undefined = node;
      while (at && !isOwn(at.callFrame.url)) at = byId.get(parent.get(at.id) ?? -1);
      node = at ?? node;
    }
    const key = by === 'twopc' && !isOwn(node.callFrame.url) ? `(outside twopc) ${label(node.callFrame, 'function')}` : label(node.callFrame, by);
    counts.set(key, (counts.get(key) ?? 0) + us);
  });
  return { total, busy, rows: [...counts.entries()].sort((a, b) => b[1] - a[1]) };
}

function main(): void {
  const args = process.argv.slice(2);
  const top = Number(args[args.indexOf('--top') + 1]) || 40;
  const by = (args.includes('--by') ? args[args.indexOf('--by') + 1] : 'function') as By;
  const files = args.filter((a, i) => a.endsWith('.cpuprofile') && args[i - 1] !== '--top');
  if (files.length === 0) throw new Error('usage: profile-summary.ts <file.cpuprofile>... [--top N] [--by file|function|twopc]');
  for (const file of files) {
    const { total, busy, rows } = summarize(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, by);
    console.log(`${file}: ${(total / 1e3).toFixed(0)} ms sampled, ${(busy / 1e3).toFixed(0)} ms busy (${((100 * busy) / total).toFixed(1)}%)`);
    for (const [key, us] of rows.slice(0, top)) console.log(`${((100 * us) / busy).toFixed(1).padStart(6)}%  ${(us / 1e3).toFixed(1).padStart(8)} ms  ${key}`);
  }
}

main();
