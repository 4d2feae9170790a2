import { describe, expect, it } from 'vitest';
import { CALM_NETWORK, SimNetwork } from './network.js';
import { Rng } from './rng.js';
import { World } from './world.js';

/** Two nodes that answer every message with one to the other: a run that never goes quiet. */
function echoWorld(maxEvents?: number): World {
  const world = new World(new SimNetwork(new Rng(1), 2, CALM_NETWORK), maxEvents);
  for (const id of [0, 1]) world.add({ id, onDeliver: (from) => world.send(id, from, new Uint8Array(1)), onWake: () => undefined });
  world.send(0, 1, new Uint8Array(1));
  return world;
}

describe('World', () => {
  it('fails a runaway run once it passes its event budget, instead of running on', () => {
    const world = echoWorld(1_000);
    expect(() => world.run(Number.MAX_SAFE_INTEGER)).toThrow(/simulation runaway: over 1000 events/);
    expect(world.stats.events).toBe(1_001);
  });

  it('runs a run within its budget to the end', () => {
    const world = echoWorld(1_000_000);
    world.run(100_000);
    expect(world.stats.events).toBe(world.stats.messagesDelivered);
    expect(world.stats.events).toBeGreaterThan(10);
    expect(world.nowUs).toBe(100_000);
  });
});
