import express, { Router } from 'express';
import type { ProtocolDeps } from './protocol-calls';
import { createProtocolHandler } from './protocol-handler';

export type BranchRouterDeps = ProtocolDeps;

/**
 * The coordinator's calls as an express router (the plain handler of
 * protocol-handler.ts on its own routes only, so the router can be mounted
 * anywhere, even at the root of the service's own app).
 */
export function createBranchRouter(deps: BranchRouterDeps): Router {
  const router = express.Router();
  router.use(createProtocolHandler(deps));
  return router;
}
