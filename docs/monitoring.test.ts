/**
 * The monitoring examples in docs/ stay true to the replica: every pompe_* metric the Grafana
 * dashboard queries is one a replica exports, and the scrape config names the default HTTP ports.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ReplicaMetrics } from '../server/metrics.js';

const doc = (name: string): Promise<string> => readFile(new URL(`./${name}`, import.meta.url), 'utf8');

describe('docs/ monitoring examples', () => {
  it('the Grafana dashboard queries only metrics a replica exports', async () => {
    const dashboard = JSON.parse(await doc('grafana-dashboard.json')) as { panels: { targets: { expr: string }[] }[] };
    const exported = new Set((await new ReplicaMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const queried = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b(pompe_[a-z_]+|process_[a-z_]+)/g)].map((m) => m[1]!))));
    expect(queried.size).toBeGreaterThan(8);
    const missing = [...queried].filter((name) => !exported.has(name.replace(/_(bucket|sum|count)$/, '')));
    expect(missing).toEqual([]);
  });

  it('the scrape config targets the replicas’ /metrics on the default HTTP ports', async () => {
    const config = await doc('prometheus.yml');
    expect(config).toContain('metrics_path: /metrics');
    for (let i = 0; i < 4; i++) expect(config).toContain(`'127.0.0.1:${30_000 + i}'`);
  });
});
