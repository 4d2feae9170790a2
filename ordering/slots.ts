/**
 * Slot arithmetic of the ordering phase (DESIGN.md "Genesis and slots"), on top of the one slot
 * function in common/time.ts. Slot 0 is the genesis slot: the genesis block covers it, so it is
 * sealed from the start and no timestamp may fall in it.
 */
import type { ProtocolConfig } from '../common/config.js';
import type { Slot } from '../common/ids.js';
import { slotOf } from '../common/time.js';

export const GENESIS_SLOT = 0 as Slot;

export class SlotClock {
  constructor(private readonly protocol: ProtocolConfig) {}

  /** The slot of a timestamp; timestamps below the first real slot map to the genesis slot. */
  slotOf(tsUs: number): Slot {
    if (tsUs < this.protocol.genesisUs) return GENESIS_SLOT;
    return slotOf(tsUs, this.protocol.genesisUs, this.protocol.slotUs);
  }

  /** The first timestamp a replica may give: the start of slot 1. */
  get firstTimestampUs(): number {
    return this.protocol.genesisUs + this.protocol.slotUs;
  }

  /**
   * The last slot that a replica whose clock reads `nowUs` considers sealed: every slot that ended
   * at least Δ ago. A batch whose median is at or after now − Δ is therefore never late.
   */
  clockFrontier(nowUs: number): Slot {
    const { genesisUs, slotUs, deltaUs } = this.protocol;
    const horizonUs = nowUs - deltaUs;
    if (horizonUs < genesisUs + slotUs) return GENESIS_SLOT;
    return (slotOf(horizonUs, genesisUs, slotUs) - 1) as Slot;
  }

  /** The first timestamp of `slot`. */
  slotStartUs(slot: Slot): number {
    return this.protocol.genesisUs + slot * this.protocol.slotUs;
  }

  /** When the frontier of a replica reaches `slot` (its end plus Δ). */
  sealTimeUs(slot: Slot): number {
    const { genesisUs, slotUs, deltaUs } = this.protocol;
    return genesisUs + (slot + 1) * slotUs + deltaUs;
  }
}
