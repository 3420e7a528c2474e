/**
 * Balancing policies: which usable member of a pool takes the next attempt. A policy sees only indexes and a
 * predicate; the pool owns the members and their health. `round-robin` is the only policy the config offers today.
 */
import type { PolicyName } from '../config/resolved.js'

/** Chooses among a pool's members. */
export interface BalancingPolicy {
  /**
   * The index of the member to try next among `size` members, considering only those `usable(i)` accepts; -1 when
   * none is. Called once or twice per attempt, so it must not allocate.
   */
  pick (size: number, usable: (i: number) => boolean): number
}

/** Each usable member in turn, starting after the last one picked. */
export class RoundRobin implements BalancingPolicy {
  #next = 0

  pick (size: number, usable: (i: number) => boolean): number {
    for (let k = 0; k < size; k++) {
      const i = (this.#next + k) % size
      if (!usable(i)) continue
      this.#next = (i + 1) % size
      return i
    }
    return -1
  }
}

/** A fresh policy instance by its config name. */
export function createPolicy (name: PolicyName): BalancingPolicy {
  switch (name) {
    case 'round-robin': return new RoundRobin()
  }
}
