/**
 * Seams the metrics watch through: the member's WAL with each fdatasync timed, its peer link with
 * each snapshot stream sent timed and counted, and a snapshot stream received counted as it is
 * read. Each passes everything through unchanged.
 *
 * Pattern: Decorator.
 * Must never: change what reaches the wrapped part, or swallow its errors.
 */

import type { PeerLink, RuntimeWal } from '../node/runtime-ports.js';

/** `wal`, with the duration of each sync reported (also a failed one: it took that long too). */
export function observedWal(wal: RuntimeWal, onSync: (seconds: number) => void): RuntimeWal {
  return {
    append: (entries) => wal.append(entries),
    setHardState: (hardState) => wal.setHardState(hardState),
    setBase: (base) => wal.setBase(base),
    write: () => wal.write(),
    syncAsync: async () => {
      const started = performance.now();
      try {
        return await wal.syncAsync();
      } finally {
        onSync((performance.now() - started) / 1_000);
      }
    },
    compact: (meta) => wal.compact(meta),
    get wantsSpare() {
      return wal.wantsSpare;
    },
    prepareSpare: () => wal.prepareSpare(),
    close: () => wal.close(),
  };
}

/** `chunks`, reporting the bytes and the time from the first read to the last once the stream ends whole. */
export async function* observedChunks(chunks: AsyncIterable<Uint8Array>, onDone: (seconds: number, bytes: number) => void): AsyncGenerator<Uint8Array> {
  const started = performance.now();
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.byteLength;
    yield chunk;
  }
  onDone((performance.now() - started) / 1_000, bytes);
}

/** `link`, with each snapshot stream that went through reported (its time and bytes). */
export function observedLink(link: PeerLink & { setPeers(peers: ReadonlyMap<string, string>): void }, onSent: (seconds: number, bytes: number) => void): PeerLink {
  return {
    send: (message) => link.send(message),
    forward: (to, entry) => link.forward(to, entry),
    leaseRequest: (to, request) => link.leaseRequest(to, request),
    setPeers: (peers) => link.setPeers(peers),
    sendSnapshot: async (message, chunks) => {
      let reported: { seconds: number; bytes: number } | null = null;
      await link.sendSnapshot(message, observedChunks(chunks, (seconds, bytes) => void (reported = { seconds, bytes })));
      const done = reported as { seconds: number; bytes: number } | null;
      if (done !== null) onSent(done.seconds, done.bytes);
    },
  };
}
