import { assert } from './assert.js';
import type { Slot } from './ids.js';

/** The one slot function every part of the system uses: slot(ts) = ⌊(ts − genesisUs) / slotUs⌋. */
export function slotOf(tsUs: number, genesisUs: number, slotUs: number): Slot {
  assert(tsUs >= genesisUs, `timestamp ${tsUs} is below genesis ${genesisUs}`);
  return Math.floor((tsUs - genesisUs) / slotUs) as Slot;
}

/** First microsecond of a slot. */
export function slotStartUs(slot: Slot, genesisUs: number, slotUs: number): number {
  return genesisUs + slot * slotUs;
}
