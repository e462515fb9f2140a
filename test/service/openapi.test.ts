import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { createApp } from '../../coordinator/service/app';
import { IdempotencyStore } from '../../coordinator/service/idempotency';
import { CoordinatorMetrics } from '../../coordinator/service/metrics';
import { startTestService } from './service-fixture';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Every (METHOD path) the express app routes, from its router stack. */
function routedOperations(app: Express): string[] {
  const stack = (app as unknown as { router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> } }).router.stack;
  return stack
    .filter((layer) => layer.route)
    .flatMap((layer) => Object.keys(layer.route!.methods).filter((m) => m !== '_all').map((m) => `${m.toUpperCase()} ${layer.route!.path}`))
    .sort();
}

function documentedOperations(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.keys(ops).filter((m) => (METHODS as readonly string[]).includes(m)).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`))
    .sort();
}

describe('OpenAPI document', () => {
  it('documents every route and routes every documented path', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-openapi-'));
    try {
      const engine = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry(), config: parseEngineConfig({}) });
      const app = createApp({
        engine,
        metrics: new CoordinatorMetrics({ inDoubt: () => 0, live: () => 0 }),
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        apiTokens: [],
        idempotency: new IdempotencyStore({ ttlMs: 1000, maxKeys: 10 }),
        bodyLimitBytes: 1024,
        participantUrls: { enabled: false, allowList: [] },
        version: 'test',
      });
      const svc = await startTestService();
      try {
        const doc = (await svc.call('GET', '/openapi.json')).body;
        expect(doc.openapi).toBe('3.1.0');
        const routed = routedOperations(app);
        expect(routed.length).toBeGreaterThanOrEqual(10);
        expect(documentedOperations(doc)).toEqual(routed);

        // Every $ref resolves.
        const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]);
        for (const ref of new Set(refs)) expect([ref, doc.components.schemas[ref] !== undefined]).toEqual([ref, true]);

        // And the running service answers each documented operation (not with "no such route" / "method not allowed").
        for (const op of documentedOperations(doc)) {
          const [method, p] = op.split(' ');
          const res = await svc.call(method, p.replace(':id', '01900000-0000-7000-8000-000000000000'), method === 'POST' ? {} : undefined);
          expect([op, res.status !== 404 || res.body.code === 'not-found', res.status !== 405]).toEqual([op, true, true]);
        }
      } finally {
        await svc.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
