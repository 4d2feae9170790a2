/**
 * The events example stays true: an application listening on a replica learns of every command it
 * executed (with client, sequence number and result), of the blocks committed, of view changes,
 * and of a peer leaving.
 */
import { describe, expect, it } from 'vitest';
import { runEventsExample } from './replica-events.js';

describe('examples/replica-events', () => {
  it('reports executions with positions and results, commits, view changes and a peer going down', async () => {
    const lines: string[] = [];
    const log = await runEventsExample(6, (line) => lines.push(line));
    const commands = log.executed.flatMap((e) => e.commands);
    // The six puts and the command after replica 3 left, each once, all executed.
    expect(commands).toHaveLength(7);
    expect(new Set(commands.map((c) => `${c.clientKey}/${c.seq}`)).size).toBe(7);
    expect(commands.map((c) => c.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // The kv store's last command was not a kv command: it executes, and the store answers an error byte.
    expect(commands.every((c) => c.status === 'executed')).toBe(true);
    const positions = log.executed.map((e) => e.position);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    for (const e of log.executed) expect(log.committed.some((c) => c.height === e.blockHeight)).toBe(true);
    expect(log.viewChanges.length).toBeGreaterThan(0);
    expect(log.peers).toContainEqual(expect.objectContaining({ peer: 3, up: false }));
    expect(lines.some((l) => /peer 3 down/.test(l))).toBe(true);
  }, 90_000);
});
