/**
 * The sealed frontier (DESIGN.md "Consensus phase"): the last slot this replica has sealed. It
 * follows the clock (slot(now − Δ) − 1), moves early to the end of any range q valid seals cover,
 * and never moves back; a seal reaching a slot leaves only after that slot is durable as the
 * frontier, so after a restart the replica never acks into a slot it sealed.
 */
import type { Slot } from '../common/ids.js';
import type { SlotClock } from './slots.js';

export class SealedFrontier {
  private current: Slot;
  private persisted: Slot;

  constructor(
    private readonly slots: SlotClock,
    recovered: Slot,
  ) {
    this.current = recovered;
    this.persisted = recovered;
  }

  get slot(): Slot {
    return this.current;
  }

  /** Follows the clock. */
  advance(nowUs: number): void {
    const byClock = this.slots.clockFrontier(nowUs);
    if (byClock > this.current) this.current = byClock;
  }

  /** Seals early up to a slot that q valid seals (in a block) already cover. */
  sealThrough(slot: Slot): void {
    if (slot > this.current) this.current = slot;
  }

  /** A seal is about to reach `slot`: true if the caller must persist it as the frontier first. */
  needsPersist(slot: Slot): boolean {
    if (slot <= this.persisted) return false;
    this.persisted = slot;
    return true;
  }
}
