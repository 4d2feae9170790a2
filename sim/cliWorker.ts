/**
 * Worker-thread plumbing for the simulator CLI. As a worker (loaded by runInOrder from the compiled
 * dist/sim/cliWorker.js) it runs the seed jobs it is sent, one at a time. On the main thread it
 * provides runInOrder: jobs go out in order to N workers, and their outcomes come back to the caller
 * strictly in job order, so the output and the "first violation" do not depend on which worker was
 * faster — the same as a sequential run.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { runJob, type SeedJob, type SeedOutcome } from './simLayers.js';

interface JobMessage {
  readonly index: number;
  readonly job: SeedJob;
}

interface OutcomeMessage {
  readonly index: number;
  readonly outcome: SeedOutcome;
}

/** Called with each outcome in job order; returning false stops the run (nothing more is delivered). */
export type Deliver = (outcome: SeedOutcome, job: SeedJob) => boolean;

/**
 * Runs `jobs` (consumed lazily) on `workerCount` worker threads, or in this thread when it is 0.
 * Resolves when every job was delivered or `deliver` asked to stop; the workers are gone by then.
 */
export async function runInOrder(jobs: Iterator<SeedJob>, workerCount: number, deliver: Deliver): Promise<void> {
  if (workerCount <= 0) {
    for (let next = jobs.next(); !next.done; next = jobs.next()) {
      if (!deliver(runJob(next.value), next.value)) return;
    }
    return;
  }
  const workers = Array.from({ length: workerCount }, () => new Worker(new URL('./cliWorker.js', import.meta.url)));
  try {
    await new Promise<void>((resolve, reject) => {
      const sent = new Map<number, SeedJob>();
      const arrived = new Map<number, SeedOutcome>();
      let nextIndex = 0;
      let nextToDeliver = 0;
      let exhausted = false;
      let finished = false;

      const finish = (error?: unknown): void => {
        if (finished) return;
        finished = true;
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      };
      const feed = (worker: Worker): void => {
        if (exhausted || finished) return;
        const next = jobs.next();
        if (next.done === true) {
          exhausted = true;
          return;
        }
        const index = nextIndex++;
        sent.set(index, next.value);
        worker.postMessage({ index, job: next.value } satisfies JobMessage);
      };
      const flush = (): void => {
        for (let outcome = arrived.get(nextToDeliver); outcome !== undefined && !finished; outcome = arrived.get(nextToDeliver)) {
          const job = sent.get(nextToDeliver)!;
          arrived.delete(nextToDeliver);
          sent.delete(nextToDeliver);
          nextToDeliver++;
          if (!deliver(outcome, job)) finish();
        }
        if (exhausted && sent.size === 0) finish();
      };

      for (const worker of workers) {
        worker.on('message', (message: OutcomeMessage) => {
          arrived.set(message.index, message.outcome);
          feed(worker);
          flush();
        });
        worker.on('error', (error) => finish(error));
        // Workers exit only when terminated, after the run: an earlier exit loses jobs.
        worker.on('exit', (code) => finish(new Error(`simulation worker exited early (code ${code})`)));
        feed(worker);
      }
      flush();
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  port.on('message', (message: JobMessage) => {
    port.postMessage({ index: message.index, outcome: runJob(message.job) } satisfies OutcomeMessage);
  });
}
