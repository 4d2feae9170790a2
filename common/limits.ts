/**
 * Every size in the system is bounded by a named limit, with the reason for its value.
 * Input beyond a limit is rejected with a typed error at the boundary (the codec or the core's
 * input checks); a store that reaches its limit evicts or refuses, it never grows without bound.
 */

/** Largest cluster supported: replica ids are u16 on the wire, signer bitmaps are sized ⌈n/8⌉,
 *  and per-message work is O(n); 128 is far above the n=16 we benchmark. */
export const MAX_REPLICAS = 128;

/** Largest WebSocket frame we accept. Must hold the largest legitimate message: a block proposal
 *  (MAX_BLOCK_PAYLOAD_BYTES plus its header and certificates) or a batch response. */
export const MAX_FRAME_BYTES = 24 * 1024 * 1024;

/** Largest client batch. 4 MiB holds ~75k 32-byte commands with their tags, far above the batch
 *  sizes that maximise throughput (~1k), while keeping one batch's hashing and copying under ~5 ms. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Most commands in one batch: bounds the per-batch execution work and the results blob. */
export const MAX_COMMANDS_PER_BATCH = 65_536;

/** Largest single command payload; a command must fit in a batch with its tags. */
export const MAX_COMMAND_BYTES = 1024 * 1024;

/** Largest result of one command returned by a state machine (larger results are an error result). */
export const MAX_RESULT_BYTES = 64 * 1024;

/** Largest results blob in one Executed notice: bounded so the notice fits a frame. */
export const MAX_RESULTS_BLOB_BYTES = 8 * 1024 * 1024;

/** Most entries in one seal. A seal rides on a vote together with its entries' OCs (~270 bytes
 *  each at n=4, ~900 at n=16), so 4096 entries stay under ~4 MB. A replica whose unsealed acks
 *  exceed this seals a shorter range and the rest follows in the next views. */
export const MAX_SEAL_ENTRIES = 4_096;

/** Most acks a replica gives into one slot, after which it answers `busy`. Must not exceed
 *  MAX_SEAL_ENTRIES so that any single slot always fits in one seal. */
export const MAX_ACKS_PER_SLOT = 2_048;

/** Most distinct entries in one block payload (and so OCs per block). The leader shortens the
 *  block's slot range until the union of its seals fits; at ~1 KB per entry and OC at n=16 this
 *  keeps a payload under MAX_BLOCK_PAYLOAD_BYTES. */
export const MAX_BLOCK_ENTRIES = 16_384;

/** Largest block payload (entries, OCs and seals). Must fit MAX_FRAME_BYTES with the header. */
export const MAX_BLOCK_PAYLOAD_BYTES = 20 * 1024 * 1024;

/** Latest a batch may expire, measured from the replica's clock when it timestamps it. Bounds how
 *  long a replica must remember an executed digest to refuse a replay (see ordering/exec). */
export const MAX_BATCH_LIFETIME_US = 120_000_000;

/** Most batches a replica holds in phase 1 for one client connection; the flooder's own oldest
 *  pending batches are evicted first. */
export const MAX_PENDING_BATCHES_PER_CONNECTION = 4_096;

/** Total bytes of phase-1 pending batches a replica holds; beyond it the connection holding the
 *  most is evicted from, so one flooding client cannot push out honest batches. */
export const MAX_PENDING_BYTES = 256 * 1024 * 1024;

/** Most blocks in one block-sync response, and its byte budget, so a response fits a frame. */
export const MAX_SYNC_BLOCKS = 64;
export const MAX_SYNC_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Most digests asked for in one batch request; a response is cut at MAX_SYNC_RESPONSE_BYTES. */
export const MAX_DIGESTS_PER_REQUEST = 1_024;

/** Simultaneous client connections accepted from one IP address (flooding bound). */
export const MAX_CONNECTIONS_PER_ADDRESS = 256;

/** Views a replica accepts ahead of its own without a certificate that justifies them: bounds the
 *  per-view state a Byzantine peer can make us keep with far-future votes and timeouts. */
export const MAX_VIEW_LOOKAHEAD = 64;

/** Largest encoded seal attachment (a vote's or timeout's): the seal, ≤ 78 bytes of msgpack per
 *  entry, plus one OC per entry (q stamps of ~80 bytes: ~1 KB at n=16). MAX_SEAL_ENTRIES entries
 *  with their OCs take under 4.5 MiB at n=16; 6 MiB bounds what a vote carries. */
export const MAX_SEAL_BYTES = 6 * 1024 * 1024;

/** Longest `message` of an Error notice, in UTF-16 code units: room for a diagnostic that names the
 *  field, short enough that answering bad frames with errors cannot amplify traffic. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

/** Longest `code` of an Error notice: ErrorCode names are under 32 characters. */
export const MAX_ERROR_CODE_CHARS = 64;

/** Largest chunk of a checkpoint (a piece of the state machine's snapshot, of the executor's state
 *  or of the checkpoint block): one chunk is one response frame during state transfer, and what a
 *  replica holds of a checkpoint in memory at a time per chunk in flight. */
export const MAX_CHECKPOINT_CHUNK_BYTES = 1024 * 1024;

/** Most chunks in one checkpoint: 64 GiB of state at MAX_CHECKPOINT_CHUNK_BYTES, far beyond what a
 *  replica's memory holds; bounds the manifest (32 bytes per chunk hash: 2 MiB). */
export const MAX_CHECKPOINT_CHUNKS = 65_536;

/** Largest encoded checkpoint manifest: the chunk hashes and a few fields. */
export const MAX_CHECKPOINT_MANIFEST_BYTES = MAX_CHECKPOINT_CHUNKS * 34 + 1024;
