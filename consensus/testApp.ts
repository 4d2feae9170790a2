/**
 * A trivial App for consensus tests and the consensus-only simulation: a payload names its view
 * and proposer plus some filler, so a validator can tell an honest payload from a tampered one.
 * It paces proposals (one per `blockIntervalUs`) and can pretend to fetch data: a payload may be
 * 'pending' until the driver reports it ready.
 */
import { ByteReader, ByteWriter, toHex } from '../common/bytes.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { Block } from '../common/messages.js';
import type { App, ProposeContext, ProposeDecision, Validity } from './types.js';

const PAYLOAD_MAGIC = 0x7e57;

export interface TestAppOptions {
  readonly self: ReplicaId;
  /** Minimum time between this leader's proposals. */
  readonly blockIntervalUs: number;
  /** Filler bytes per payload (exercises payload transport and hashing). */
  readonly fillerBytes: number;
  /** When set, validate() answers 'pending' for blocks this predicate picks, until markReady(). */
  readonly delayValidation?: (digest: Digest) => boolean;
}

export function encodeTestPayload(view: number, proposer: ReplicaId, fillerBytes: number): Uint8Array {
  const w = new ByteWriter(12 + fillerBytes).u16(PAYLOAD_MAGIC).u64(view).u16(proposer);
  for (let i = 0; i < fillerBytes; i++) w.u8((view + i) & 0xff);
  return w.finish();
}

export class TestApp implements App {
  private lastProposalUs = -Infinity;
  private readonly ready = new Set<string>();
  readonly attachmentsSeen: number[] = [];

  constructor(private readonly opts: TestAppOptions) {}

  propose(ctx: ProposeContext): ProposeDecision {
    const due = this.lastProposalUs + this.opts.blockIntervalUs;
    if (ctx.nowUs < due) return { retryAtUs: due };
    this.lastProposalUs = ctx.nowUs;
    this.attachmentsSeen.push(ctx.attachments.length);
    return { payload: encodeTestPayload(ctx.view, this.opts.self, this.opts.fillerBytes) };
  }

  validate(block: Block, digest: Digest): Validity {
    const r = new ByteReader(block.payload);
    const magic = r.u16();
    const v = r.u64();
    const proposer = r.u16();
    if (r.failed || magic !== PAYLOAD_MAGIC || v !== block.view || proposer !== block.proposer) return 'invalid';
    const key = toHex(digest);
    if (this.opts.delayValidation?.(digest) === true && !this.ready.has(key)) return 'pending';
    return 'valid';
  }

  attachment(block: Block): Uint8Array {
    return new ByteWriter(8).u64(block.view).finish();
  }

  markReady(digest: Digest): void {
    this.ready.add(toHex(digest));
  }
}
