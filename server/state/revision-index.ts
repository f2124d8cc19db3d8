/**
 * Which paths each retained revision changed, in revision order: what lets a watch replay read
 * history a revision at a time, in bounded slices, instead of walking every path of a subtree
 * and sorting all of its history at once. Two parallel arrays (revision, path) appended at
 * commit, trimmed from the front at compaction (an offset, spliced away when it grows).
 *
 * Derived data: rebuilt from the history at start, never stored.
 *
 * Must never: hold a revision at or below the compaction mark (it cannot be replayed), or lose
 * the order revisions were committed in.
 */

/** Dead entries at the front are spliced away once they are this many and half of the arrays. */
const SPLICE_AT = 4_096;

export class RevisionIndex {
  private revisions: number[] = [];
  private paths: string[] = [];
  private start = 0;

  /** `path` changed at `revision` (revisions arrive in order; one revision's paths together). */
  record(revision: number, path: string): void {
    this.revisions.push(revision);
    this.paths.push(path);
  }

  /** Rebuilt at start from unordered (revision, path) pairs: sorted by revision, then path order given. */
  static rebuilt(pairs: readonly (readonly [number, string])[], comparePaths: (a: string, b: string) => number): RevisionIndex {
    const index = new RevisionIndex();
    const sorted = [...pairs].sort((a, b) => a[0] - b[0] || comparePaths(a[1], b[1]));
    for (const [revision, path] of sorted) index.record(revision, path);
    return index;
  }

  /** Forget every revision at or below `revision`. */
  compactTo(revision: number): void {
    let at = this.start;
    while (at < this.revisions.length && this.revisions[at]! <= revision) at += 1;
    this.start = at;
    if (this.start >= SPLICE_AT && this.start * 2 >= this.revisions.length) {
      this.revisions = this.revisions.slice(this.start);
      this.paths = this.paths.slice(this.start);
      this.start = 0;
    }
  }

  /** The position of the first entry at or above `revision` (for `at`). */
  seek(revision: number): number {
    let lo = this.start;
    let hi = this.revisions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.revisions[mid]! < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get end(): number {
    return this.revisions.length;
  }

  revisionAt(position: number): number {
    return this.revisions[position]!;
  }

  pathAt(position: number): string {
    return this.paths[position]!;
  }

  /** Entries held (for tests and memory figures). */
  get size(): number {
    return this.revisions.length - this.start;
  }
}
