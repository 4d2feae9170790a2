import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeMessage } from '../common/codec.js';
import { generateCluster } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { asDigest, type ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { PompeClientError } from './errors.js';
import { GatewayEngine, SLOW_GATEWAY_FACTOR, type GatewayLinks } from './gatewayMode.js';
import { resolveOptions } from './options.js';
import type { OrderedInfo, PendingCommand, SubmitResult } from './pending.js';

const { config } = generateCluster({ n: 4, keySeed: 'gateway-engine' }, nodeCrypto);
const FAILOVER_MS = 1_000;

let nowUs = 0;
let up: boolean[];
let sent: { to: number; seq: number }[];
let engine: GatewayEngine;
let settled: { seq: number; outcome: string; detail: SubmitResult | PompeClientError | OrderedInfo }[];

const links: GatewayLinks = {
  isUp: (r) => up[r] === true,
  send: (r, frame) => {
    const msg = decodeMessage(frame, { replicaCount: 4 });
    if (msg.ok && msg.value.type === 'command') sent.push({ to: r, seq: msg.value.seq });
    return up[r] === true;
  },
};

function command(seq: number): PendingCommand {
  return {
    seq,
    payload: Uint8Array.of(seq),
    submitUs: nowUs,
    orderedUs: -1,
    ts: null,
    outcome: null,
    resolveOrdered: (info) => settled.push({ seq, outcome: 'ordered', detail: info }),
    resolveExecuted: (result) => settled.push({ seq, outcome: 'executed', detail: result }),
    reject: (error) => settled.push({ seq, outcome: 'failed', detail: error }),
  };
}

/** Advances the clock and the sweeper's timers together. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms / 50; i++) {
    nowUs += 50_000;
    await vi.advanceTimersByTimeAsync(50);
  }
}

const reply = (from: number, msg: Message): void => engine.onMessage(from as ReplicaId, msg);
const ordered = (seq: number, ts: number): Message => ({ type: 'commandOrdered', seq, digest: asDigest(new Uint8Array(32)), ts });
const executed = (seq: number, position: number, status = 0): Message => ({ type: 'commandExecuted', seq, position, result: Uint8Array.of(status, 42) });

beforeEach(() => {
  vi.useFakeTimers();
  nowUs = 1_000_000_000;
  up = [true, true, true, true];
  sent = [];
  settled = [];
  const opts = resolveOptions({ mode: 'gateway', gateway: 0, gatewayFailoverMs: FAILOVER_MS, timeoutMs: 20_000, clock: () => nowUs }, config, nodeCrypto);
  engine = new GatewayEngine(config, nodeCrypto, links, opts, { released: () => {} });
});
afterEach(() => {
  engine.close(null);
  vi.useRealTimers();
});

describe('GatewayEngine', () => {
  it('reports ordered then executed with the status and result from the gateway', async () => {
    engine.start(command(1));
    expect(sent).toEqual([{ to: 0, seq: 1 }]);
    reply(0, ordered(1, 777));
    reply(0, executed(1, 9));
    reply(1, executed(1, 9)); // a second report: ignored, counted
    expect(settled.map((s) => s.outcome)).toEqual(['ordered', 'executed']);
    expect(settled[1]!.detail).toMatchObject({ status: 'executed', position: 9, ts: 777, index: null });
    expect([...(settled[1]!.detail as SubmitResult).result]).toEqual([42]);
    expect(engine.stats.lateReplies).toBe(1);
  });

  it('a silent gateway loses its command at the failover deadline; later commands go to the new one', async () => {
    engine.start(command(1));
    await advance(FAILOVER_MS - 100);
    expect(sent).toHaveLength(1);
    await advance(200);
    expect(sent).toEqual([
      { to: 0, seq: 1 },
      { to: 1, seq: 1 },
    ]);
    expect(engine.gateway).toBe(1);
    engine.start(command(2));
    expect(sent[2]).toEqual({ to: 1, seq: 2 });
    reply(1, executed(1, 3, 1)); // the other copy executed first: this one is a duplicate
    expect(settled[1]).toMatchObject({ seq: 1, outcome: 'executed', detail: { status: 'duplicate', position: 3 } });
  });

  it('a gateway that answers other commands is slow, not dead: failover waits, but not forever', async () => {
    engine.start(command(1));
    engine.start(command(2));
    // The gateway keeps answering command 2's progress but never command 1 (slow, or censoring it).
    for (let t = 0; t < SLOW_GATEWAY_FACTOR * FAILOVER_MS - 300; t += 300) {
      reply(0, ordered(2, 1));
      await advance(300);
    }
    expect(sent.filter((s) => s.seq === 1)).toEqual([{ to: 0, seq: 1 }]);
    expect(engine.stats.postponed).toBeGreaterThan(0);
    reply(0, ordered(2, 1));
    await advance(600);
    expect(sent.filter((s) => s.seq === 1)).toEqual([
      { to: 0, seq: 1 },
      { to: 1, seq: 1 },
    ]);
  });

  it('a command reported ordered is not moved early (it will execute; a copy would be a duplicate)', async () => {
    engine.start(command(1));
    reply(0, ordered(1, 5));
    // Then the gateway falls silent.
    await advance(SLOW_GATEWAY_FACTOR * FAILOVER_MS - 200);
    expect(sent).toEqual([{ to: 0, seq: 1 }]);
    await advance(400);
    expect(sent.at(-1)).toEqual({ to: 1, seq: 1 });
  });

  it('a gateway whose link is down is skipped at once and at failover even if it answered lately', async () => {
    up[0] = false;
    engine.start(command(1));
    expect(sent).toEqual([{ to: 1, seq: 1 }]);
    reply(1, ordered(1, 5));
    up[1] = false;
    await advance(FAILOVER_MS + 100);
    expect(sent.at(-1)).toEqual({ to: 2, seq: 1 });
  });

  it('times out with TIMEOUT after timeoutMs whatever the failovers', async () => {
    engine.start(command(1));
    await advance(20_000 + 200);
    const failed = settled.find((s) => s.outcome === 'failed');
    expect(failed?.detail).toBeInstanceOf(PompeClientError);
    expect((failed!.detail as PompeClientError).code).toBe('TIMEOUT');
    expect(engine.inFlight).toBe(0);
  });
});
