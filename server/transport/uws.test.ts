/**
 * Which server library a replica runs on: the uWS build that loads on this Node, else `ws` (with
 * the reasons), or a refusal when uWS was required. The suite runs on Node 20 (the trufflesuite
 * build loads) and on Node 22 (no build loads on this machine's glibc 2.36): each expectation
 * below holds on both, and the mesh test runs on whatever this Node gets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { replicaId } from '../../common/ids.js';
import { chooseServerBackend, fallbackWarning, UwsUnavailableError } from './backendChoice.js';
import { commandMsg, startTestCluster, waitUntil, type TestCluster } from './testing.js';
import { loadedUws, probeUws, UWS_BUILDS } from './uws.js';

/** Builds whose binary is never there: what a Node with no matching build sees. */
const NO_BUILDS = UWS_BUILDS.map((b) => ({ ...b, binaryPath: () => '/nonexistent/uws.node' }));
const unavailable = () => probeUws(NO_BUILDS);

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('probeUws', () => {
  it('loads the trufflesuite build on Node 16/18/20 (ABIs 93/108/115) on Linux x64', () => {
    const probe = loadedUws();
    const trufflesuiteAbi = ['93', '108', '115'].includes(process.versions.modules) && process.platform === 'linux' && process.arch === 'x64';
    if (trufflesuiteAbi) {
      expect(probe).toMatchObject({ ok: true, packageName: 'uWebSockets.js' });
      expect(probe.ok && probe.binary).toMatch(/binaries\/uws_linux_x64_\d+\.node$/);
    } else if (!probe.ok) {
      // Every build says why: the trufflesuite one has no binary for this ABI.
      expect(probe.reasons[0]).toMatch(new RegExp(`^uWebSockets\\.js: no binary for .* Node ABI ${process.versions.modules}`));
      expect(probe.reasons).toHaveLength(UWS_BUILDS.length);
    } else {
      expect(probe.packageName).toBe('@btc-vision/uwebsockets.js'); // Node 22+ on glibc ≥ 2.38
    }
  });

  it('gives one reason per build when none loads', () => {
    const probe = unavailable();
    expect(probe.ok).toBe(false);
    expect(!probe.ok && probe.reasons).toEqual(UWS_BUILDS.map((b) => `${b.packageName}: no binary for ${process.platform}-${process.arch} Node ABI ${process.versions.modules} (Node ${process.versions.node})`));
    expect(probeUws([{ packageName: 'no-such-uws-package', binaryPath: () => '' }])).toEqual({ ok: false, reasons: ['no-such-uws-package: not installed'] });
  });
});

describe('chooseServerBackend', () => {
  it('auto: uWS where a build loads, else ws with the reasons', () => {
    const probe = loadedUws();
    const here = chooseServerBackend('auto');
    expect(here.backend.name).toBe(probe.ok ? 'uws' : 'ws');
    const elsewhere = chooseServerBackend('auto', unavailable);
    expect(elsewhere.backend.name).toBe('ws');
    expect(elsewhere.fallbackReason).toMatch(/^uWebSockets\.js: no binary .*; @btc-vision\/uwebsockets\.js: no binary/);
    expect(fallbackWarning(elsewhere.fallbackReason!)).toMatch(/serving on the ws backend.*--server-backend uws/);
  });

  it('uws: refuses when no build loads, saying why and how it was required', () => {
    expect(() => chooseServerBackend('uws', unavailable)).toThrow(UwsUnavailableError);
    expect(() => chooseServerBackend('uws', unavailable)).toThrow(/no uWebSockets\.js build loads on Node .*no binary.*--server-backend uws or POMPE_SERVER_BACKEND=uws/);
  });

  it('ws: ws even where uWS loads, without a fallback warning', () => {
    expect(chooseServerBackend('ws')).toMatchObject({ backend: { name: 'ws' }, fallbackReason: null });
  });
});

describe('a mesh on each backend', () => {
  for (const backend of ['ws', 'auto'] as const) {
    it(`${backend}: four replicas connect and deliver, and report what serves their ports`, async () => {
      const c = (cluster = await startTestCluster({ n: 4, serverBackend: backend }));
      await waitUntil(() => c.transports.every((t) => t!.peersUp().length === 3), 'mesh');
      c.transports.forEach((t, i) => {
        for (let to = 0; to < 4; to++) if (to !== i) t!.sendToPeer(replicaId(to), commandMsg(i));
      });
      await waitUntil(() => c.inboxes.every((inbox) => inbox.peer.length === 3), 'delivery');
      const expected = backend === 'ws' || !loadedUws().ok ? 'ws' : 'uws';
      expect(c.transports[0]!.serverInfo()).toMatchObject({ backend: expected, tls: false });
    });
  }
});
