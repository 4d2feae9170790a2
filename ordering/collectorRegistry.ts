/**
 * Which client connection speaks for which collector id (from its `clientHello`), so Executed
 * notices for a batch reach the collector named in its header.
 */
import { MAX_REPLICAS } from '../common/limits.js';

export class CollectorRegistry {
  private readonly connByCollector = new Map<number, number>();

  /** Registers a connection for a collector id; an error message if the id is not a client's. */
  register(conn: number, collectorId: number): string | null {
    if (collectorId < MAX_REPLICAS) return `collector ids below ${MAX_REPLICAS} belong to replicas`;
    this.connByCollector.set(collectorId, conn);
    return null;
  }

  closed(conn: number): void {
    for (const [collectorId, c] of this.connByCollector) if (c === conn) this.connByCollector.delete(collectorId);
  }

  connFor(collectorId: number): number | undefined {
    return this.connByCollector.get(collectorId);
  }
}
