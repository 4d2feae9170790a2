import { describe, expect, it } from 'vitest';
import { missingReplicaProcessEnv, withReplicaProcessEnv } from './processEnv.js';

describe('replica process environment', () => {
  it('adds MALLOC_ARENA_MAX=2 unless the launcher chose a value of its own', () => {
    expect(withReplicaProcessEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_ARENA_MAX: '2' });
    expect(withReplicaProcessEnv({ MALLOC_ARENA_MAX: '4' }).MALLOC_ARENA_MAX).toBe('4');
  });

  it('names what a Linux replica started without, and nothing elsewhere', () => {
    expect(missingReplicaProcessEnv({}, 'linux')).toEqual(['MALLOC_ARENA_MAX']);
    expect(missingReplicaProcessEnv({ MALLOC_ARENA_MAX: '8' }, 'linux')).toEqual([]);
    expect(missingReplicaProcessEnv({}, 'darwin')).toEqual([]);
  });
});
