/**
 * The blocks a replica knows above its committed tip, as a tree rooted at that tip, plus a bounded
 * window of recently committed blocks for answering block-sync requests from memory.
 */
import { assert } from '../common/assert.js';
import { toHex } from '../common/bytes.js';
import type { Digest } from '../common/ids.js';
import type { Block, QuorumCert, TimeoutCert } from '../common/messages.js';

/** Committed blocks kept in memory to serve block sync; older ones are read from storage. */
const RECENT_COMMITTED_BLOCKS = 512;

export interface BlockNode {
  readonly block: Block;
  readonly digest: Digest;
  readonly key: string;
  /** A verified QC for this block, once one is known. */
  qc: QuorumCert | null;
  /** The App's answer for this block's payload ('unchecked' until asked; synced blocks skip it). */
  validity: 'unchecked' | 'valid' | 'invalid' | 'pending';
  /** The TC the proposal entered its view with (null if it entered by QC or came by sync). */
  entryTc: TimeoutCert | null;
}

export type InsertResult = 'inserted' | 'known' | 'missingParent' | 'invalid';

export class BlockTree {
  private readonly nodes = new Map<string, BlockNode>();
  private rootNode: BlockNode;
  private readonly recent = new Map<string, BlockNode>();

  constructor(root: Block, rootDigest: Digest, rootQc: QuorumCert | null) {
    this.rootNode = { block: root, digest: rootDigest, key: toHex(rootDigest), qc: rootQc, validity: 'valid', entryTc: null };
    this.nodes.set(this.rootNode.key, this.rootNode);
    this.remember(this.rootNode);
  }

  get root(): BlockNode {
    return this.rootNode;
  }

  get size(): number {
    return this.nodes.size;
  }

  get(digest: Digest): BlockNode | undefined {
    return this.nodes.get(toHex(digest));
  }

  getByKey(key: string): BlockNode | undefined {
    return this.nodes.get(key);
  }

  /** A block in the tree or in the recently committed window. */
  lookup(digest: Digest): BlockNode | undefined {
    const key = toHex(digest);
    return this.nodes.get(key) ?? this.recent.get(key);
  }

  parentOf(node: BlockNode): BlockNode | undefined {
    return node === this.rootNode ? undefined : this.nodes.get(toHex(node.block.parent));
  }

  /** Adds a block whose parent is in the tree. Heights must increase by one and views strictly. */
  insert(block: Block, digest: Digest, entryTc: TimeoutCert | null): InsertResult {
    const key = toHex(digest);
    if (this.nodes.has(key)) return 'known';
    if (block.height <= this.rootNode.block.height) return 'invalid';
    const parent = this.nodes.get(toHex(block.parent));
    if (parent === undefined) return 'missingParent';
    if (block.height !== parent.block.height + 1 || block.view <= parent.block.view) return 'invalid';
    this.nodes.set(key, { block, digest, key, qc: null, validity: 'unchecked', entryTc });
    return 'inserted';
  }

  /** True if `node` is `ancestor` or descends from it. */
  extendsFrom(node: BlockNode, ancestor: BlockNode): boolean {
    let current: BlockNode | undefined = node;
    while (current !== undefined && current.block.height > ancestor.block.height) current = this.parentOf(current);
    return current === ancestor;
  }

  /** Blocks strictly above the root up to and including `node`, oldest first. */
  pathFromRoot(node: BlockNode): BlockNode[] {
    const path: BlockNode[] = [];
    let current: BlockNode | undefined = node;
    while (current !== undefined && current !== this.rootNode) {
      path.push(current);
      current = this.parentOf(current);
    }
    assert(current === this.rootNode, 'block does not descend from the committed tip');
    return path.reverse();
  }

  /**
   * Makes `node` the new root (committed tip). Returns the newly committed blocks, oldest first,
   * and drops every block that does not descend from the new root.
   */
  commit(node: BlockNode): BlockNode[] {
    const committed = this.pathFromRoot(node);
    this.rootNode = node;
    for (const [key, candidate] of this.nodes) {
      if (candidate === node) continue;
      if (candidate.block.height <= node.block.height || !this.extendsFrom(candidate, node)) this.nodes.delete(key);
    }
    for (const c of committed) this.remember(c);
    return committed;
  }

  /** Blocks above the root, for status and tests. */
  *pending(): IterableIterator<BlockNode> {
    for (const n of this.nodes.values()) if (n !== this.rootNode) yield n;
  }

  private remember(node: BlockNode): void {
    this.recent.set(node.key, node);
    if (this.recent.size > RECENT_COMMITTED_BLOCKS) {
      const oldest = this.recent.keys().next().value as string;
      this.recent.delete(oldest);
    }
  }
}
