// A consumer of the SDK's client entry through require, with neither express nor its types
// installed: begin and commit a transaction on the installed `twopc serve`.
import { CoordinatorClient } from '@twopc/participant-sdk/client';

async function main(): Promise<void> {
  const twopc = new CoordinatorClient({ url: process.env.TWOPC_URL!, token: process.env.TWOPC_API_TOKEN! });
  const { id } = await twopc.begin({ timeoutMs: 10_000 });
  const outcome = await twopc.commit(id);
  const status = await twopc.get(id);
  await twopc.close();
  console.log(JSON.stringify({ outcome: outcome.state, state: status.state }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
