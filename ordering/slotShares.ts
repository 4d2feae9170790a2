/**
 * How many acks each source holds in each slot this replica has not yet seen committed. A slot's
 * acks are capped (a block cannot end inside a slot), and the cap is shared: no source may take
 * more than SOURCE_SHARE_OF_SLOT of it, so one source filling slots with batches leaves room for
 * every other (THREATS.md "One source fills a slot's ack capacity"). A source is a client
 * connection, a gateway replica, or this replica's own gateway.
 */
import type { Slot } from '../common/ids.js';

/** The largest part of one slot's ack capacity a single source may hold. A half: a source that
 *  fills its half gets `busy` (and restarts phase 1 into a later slot), while the other half stays
 *  open to everyone else; an honest collector never comes near it (at the default 2048 acks per
 *  2–5 ms slot, a half is ~200k batches per second from one connection). */
export const SOURCE_SHARE_OF_SLOT = 0.5;

export class SlotShares {
  private readonly bySlot = new Map<number, Map<string, number>>();
  readonly perSourceCap: number;

  constructor(slotCap: number) {
    this.perSourceCap = Math.max(1, Math.floor(slotCap * SOURCE_SHARE_OF_SLOT));
  }

  /** True when `source` already holds its share of `slot`. */
  full(slot: Slot, source: string): boolean {
    return (this.bySlot.get(slot)?.get(source) ?? 0) >= this.perSourceCap;
  }

  add(slot: Slot, source: string): void {
    let sources = this.bySlot.get(slot);
    if (sources === undefined) this.bySlot.set(slot, (sources = new Map()));
    sources.set(source, (sources.get(source) ?? 0) + 1);
  }

  /** Forgets slots at or below a committed one: no more acks go there. */
  pruneThrough(slot: Slot): void {
    for (const s of this.bySlot.keys()) if (s <= slot) this.bySlot.delete(s);
  }
}
