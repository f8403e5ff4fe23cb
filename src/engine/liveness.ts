// Machine liveness on the leader. nats-server 2.9 does not tell watchers when a key expires by
// bucket TTL, so the leader keeps its own last-seen time per machine (local clock, from the
// `machines` watch) and calls a machine lost after agent TTL of silence. A new leader starts
// every known machine with one full TTL of grace: no mass eviction after a failover.
export class Liveness {
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  seen(id: string, now: number): void {
    this.lastSeen.set(id, now);
  }

  /** The record was deleted or purged: lost at once. */
  forget(id: string): void {
    this.lastSeen.delete(id);
  }

  graceAll(now: number): void {
    for (const id of this.lastSeen.keys()) this.lastSeen.set(id, now);
  }

  isAlive(id: string, now: number): boolean {
    const t = this.lastSeen.get(id);
    return t !== undefined && now - t <= this.ttlMs;
  }

  /** Milliseconds until the next live machine would be declared lost (undefined: none). */
  nextExpiry(now: number): number | undefined {
    let min: number | undefined;
    for (const t of this.lastSeen.values()) {
      const left = t + this.ttlMs - now;
      if (left >= 0 && (min === undefined || left < min)) min = left;
    }
    return min;
  }

  /** Machines tracked (alive or not yet found dead). */
  get size(): number {
    return this.lastSeen.size;
  }

  clear(): void {
    this.lastSeen.clear();
  }
}
