/**
 * A local worker process of `headlens scan --workers N` (forked by local_workers.ts): it runs the jobs its
 * parent sends over IPC, one at a time, holding the model once, and answers each with its results or the
 * reason it failed. It exits when the parent disconnects.
 */
import { initBackend, type BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { ScanJobRunner } from './scan_job_runner.js';

const backend = process.env.HEADLENS_BACKEND as BackendName | undefined;
const runner = new ScanJobRunner(backend);

process.on('message', async (msg: { id: string; data: unknown }) => {
  try {
    await initBackend({ backend });
    const results = await runner.run(msg.data);
    process.send!({ id: msg.id, ok: true, results });
  } catch (e) {
    const reason = e instanceof HeadlensError ? e.message : ((e as Error).stack ?? String(e));
    process.send!({ id: msg.id, ok: false, reason });
  }
});
process.on('disconnect', () => {
  runner.dispose();
  process.exit(0);
});
process.send!({ ready: true });
