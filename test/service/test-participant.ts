import express from 'express';
import type { Server } from 'node:http';
import { verifySignature } from '../../participant-sdk/src/signature';
import { branchCallSchema, commitCallSchema, SIGNATURE_HEADER } from '../../participant-sdk/src/wire';

export type BranchState = 'active' | 'prepared' | 'committed' | 'rolled-back';
/** What the participant does with one call: answer per protocol, fail with 500, or never answer. */
export type Behaviour = 'normal' | 'fail' | 'hang' | 'hazard';

export interface RecordedCall {
  op: 'prepare' | 'commit' | 'rollback' | 'status';
  gid: string;
  onePhase?: boolean;
  signature: 'ok' | 'rejected';
}

/**
 * A participant service implementing the wire protocol (SPEC §6) in a few
 * lines, with scriptable votes and failures: it checks every call's signature
 * with `verifySignature` and validates every body with the wire schemas, so
 * the coordinator's HTTP adapter is tested against the contract itself.
 */
export class TestParticipant {
  readonly calls: RecordedCall[] = [];
  readonly states = new Map<string, BranchState>();
  vote: (gid: string) => { vote: 'yes' } | { vote: 'read-only' } | { vote: 'no'; reason: string } = () => ({ vote: 'yes' });
  behaviour: (op: RecordedCall['op'], gid: string) => Behaviour = () => 'normal';
  /** Milliseconds to wait before handling a call. */
  delay: (op: RecordedCall['op'], gid: string) => number = () => 0;
  /** One-phase commits answer 409 rolled-back when this says so. */
  onePhaseFails: (gid: string) => string | undefined = () => undefined;
  private server?: Server;
  private readonly hanging = new Set<express.Response>();

  constructor(readonly secret: string, readonly basePath = '/twopc') {}

  get url(): string {
    const address = this.server?.address();
    if (!address || typeof address !== 'object') throw new Error('test participant not listening');
    return `http://127.0.0.1:${address.port}${this.basePath}`;
  }

  async start(port = 0): Promise<this> {
    const app = express();
    app.use(express.text({ type: '*/*' }));
    const router = express.Router();
    const handle = (op: RecordedCall['op']) => (req: express.Request, res: express.Response) => {
      const ms = this.delay(op, op === 'status' ? String(req.params.gid) : safeGid(String(req.body ?? '')));
      if (ms > 0) setTimeout(() => this.handle(op, req, res), ms);
      else this.handle(op, req, res);
    };
    router.post('/prepare', handle('prepare'));
    router.post('/commit', handle('commit'));
    router.post('/rollback', handle('rollback'));
    router.get('/branches/:gid', handle('status'));
    app.use(this.basePath, router);
    await new Promise<void>((resolve) => {
      this.server = app.listen(port, '127.0.0.1', () => resolve());
    });
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  ops(op: RecordedCall['op']): RecordedCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  private handle(op: RecordedCall['op'], req: express.Request, res: express.Response): void {
    const raw = typeof req.body === 'string' ? req.body : '';
    const check = verifySignature(this.secret, req.get(SIGNATURE_HEADER), req.method, req.originalUrl, raw);
    const gid = op === 'status' ? String(req.params.gid) : safeGid(raw);
    if (!check.ok) {
      this.calls.push({ op, gid, signature: 'rejected' });
      res.status(401).json({ type: 'urn:twopc:problem:unauthorized', title: 'Unauthorized', status: 401, code: 'unauthorized', detail: check.reason });
      return;
    }
    const schema = op === 'commit' ? commitCallSchema : branchCallSchema;
    const call = op === 'status' ? { gid, onePhase: undefined } : schema.parse(JSON.parse(raw));
    const onePhase = 'onePhase' in call ? call.onePhase : undefined;
    this.calls.push({ op, gid: call.gid, signature: 'ok', ...(onePhase ? { onePhase } : {}) });
    const behaviour = this.behaviour(op, call.gid);
    if (behaviour === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (behaviour === 'fail') {
      res.status(500).json({ error: 'injected failure' });
      return;
    }
    if (behaviour === 'hazard') {
      // The branch ended the other way behind the coordinator's back (rolled back by hand): phase 2 records a heuristic hazard.
      this.states.set(call.gid, 'rolled-back');
      res.status(409).json({ state: 'rolled-back', reason: 'rolled back by hand' });
      return;
    }
    const state = this.states.get(call.gid);
    switch (op) {
      case 'prepare': {
        const vote = this.vote(call.gid);
        if (vote.vote === 'no') {
          this.states.set(call.gid, 'rolled-back');
          res.status(409).json(vote);
          return;
        }
        this.states.set(call.gid, vote.vote === 'yes' ? 'prepared' : 'committed');
        res.json(vote);
        return;
      }
      case 'commit': {
        const failure = onePhase ? this.onePhaseFails(call.gid) : undefined;
        if (failure !== undefined || (onePhase && state === 'rolled-back')) {
          this.states.set(call.gid, 'rolled-back');
          res.status(409).json({ state: 'rolled-back', reason: failure ?? 'rolled back' });
          return;
        }
        this.states.set(call.gid, 'committed');
        res.json({ state: 'committed' });
        return;
      }
      case 'rollback':
        if (state !== 'committed') this.states.set(call.gid, 'rolled-back');
        res.json({ state: 'rolled-back' });
        return;
      case 'status':
        res.json({ state: state ?? 'unknown' });
        return;
    }
  }
}

function safeGid(raw: string): string {
  try {
    const gid: unknown = JSON.parse(raw).gid;
    return typeof gid === 'string' ? gid : '';
  } catch {
    return '';
  }
}
