/**
 * Whether the client can reach enough replicas to make progress: q in direct mode (fewer cannot
 * order anything), one in gateway mode. A drop below that is forgiven for `graceMs` (a replica
 * restarting on the same machine is back within ~100 ms); past it the client is *unavailable*:
 * the owner fails what is in flight with UNAVAILABLE and refuses new commands at once, instead of
 * letting each wait out its whole timeout. It becomes available again as soon as enough links are
 * back up.
 */

export interface Availability {
  readonly available: boolean;
  /** Replicas whose link is up now. */
  readonly connected: number;
  /** Replicas needed: q in direct mode, 1 in gateway mode. */
  readonly needed: number;
}

export interface QuorumWatchOptions {
  readonly needed: number;
  readonly graceMs: number;
  /** Called on every change of `available` (not on link changes that do not change it). */
  readonly onChange: (availability: Availability) => void;
}

export class QuorumWatch {
  private connected = 0;
  private isAvailable = true;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly opts: QuorumWatchOptions) {}

  get available(): boolean {
    return this.isAvailable;
  }

  get state(): Availability {
    return { available: this.isAvailable, connected: this.connected, needed: this.opts.needed };
  }

  /** The number of links up changed to `connected`. */
  update(connected: number): void {
    this.connected = connected;
    if (connected >= this.opts.needed) {
      this.cancel();
      if (!this.isAvailable) this.set(true);
      return;
    }
    if (!this.isAvailable || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.connected < this.opts.needed) this.set(false);
    }, this.opts.graceMs);
  }

  /** Stops the grace timer (on close). */
  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private set(available: boolean): void {
    this.isAvailable = available;
    this.opts.onChange(this.state);
  }
}
