/**
 * `headlens worker --queue redis://HOST:PORT`: runs scan jobs from a BullMQ queue (put there by
 * `headlens scan … --queue`) until stopped (Ctrl-C or SIGTERM, which lets the job in hand finish first).
 * Start one per GPU or machine: `headlens worker --queue redis://HOST:PORT --backend webgpu`.
 */
import { z } from 'zod';
import { defineCommand, option, positiveInt } from './options.js';
import { DEFAULT_QUEUE_NAME, startQueueWorker } from './scan_queue.js';

export const workerCommand = defineCommand({
  summary: 'run scan jobs from a BullMQ queue (Redis) until stopped; start one per GPU or machine',
  options: {
    queue: option(z.string({ error: (iss) => (iss.input === undefined ? '--queue is required' : undefined) }), { description: 'the Redis server of the queue', value: 'redis://HOST:PORT', example: 'redis://127.0.0.1:6379' }),
    'queue-name': option(z.string().optional(), { description: 'the BullMQ queue name', value: 'NAME', default: DEFAULT_QUEUE_NAME }),
    'lock-seconds': option(positiveInt().default(60), { description: "how long a job stays this worker's without a sign of life; a dead worker's job goes to another after this", value: 'S', example: '60' }),
  },
  async run(v) {
    const span = (items: number[]) => (items.length === 1 ? `item ${items[0]}` : `items ${items[0]}–${items.at(-1)}`);
    const w = await startQueueWorker({
      url: v.queue,
      name: v['queue-name'],
      backend: v.backend,
      lockMs: v['lock-seconds'] * 1000,
      onJob: (e) => console.error(`worker: job ${e.id.slice(0, 12)} (${span(e.items)}) ${e.state}${e.reason ? `: ${e.reason}` : ''}`),
    });
    console.error(`worker: waiting for jobs on ${v.queue} (queue ${v['queue-name'] ?? DEFAULT_QUEUE_NAME})`);
    const stop = () => void w.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await w.closed;
    console.error('worker: stopped');
  },
});
