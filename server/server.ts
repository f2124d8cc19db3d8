/**
 * One Warden member, wired: the WAL and the state store under its data directory (locked to
 * this process), the peer channels, the runtime, and the client port, all within the member's
 * limits (server/limits.ts). `startServer` is what `wardend` runs and what `warden/server`
 * exports, so users (and our tests) can embed a member in a process.
 *
 * Must never: start on storage it could not recover, or on a data directory another process
 * holds (it throws with the reason); leave a port, a lock, a file handle or a timer behind —
 * after close(), or after a start that failed part way.
 */

import { fileAuditLog } from './auth/audit.js';
import { AuthGate } from './auth/gate.js';
import { PasswordHasher } from './auth/passwords.js';
import { FailureThrottle } from './auth/throttle.js';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer as createHttpServer } from 'node:http';
import { PeerSecret } from './transport/peer-secret.js';
import { createPort, readTlsFiles, type TlsFiles } from './tls.js';
import { WebSocketServer } from 'ws';
import { pino, type Logger } from 'pino';
import { MemberRuntime, type RuntimeLogger } from './node/runtime.js';
import { RocksStoreHome } from './node/store-home.js';
import { NodeFileSystem } from './storage/file-system.js';
import { Wal } from './storage/wal/wal.js';
import { PeerTransport } from './transport/peer-transport.js';
import { observedChunks, observedLink, observedWal } from './metrics/observed.js';
import { APPLIED_BEHIND_MAX, startOperations } from './operations.js';
import { startClientServer, type ClientServer } from './api/client-server.js';
import { createHandlers } from './api/handlers.js';
import { SnapshotStreams } from './api/snapshot-streams.js';
import { clusterIdOf, readClusterId, writeClusterId } from './cluster-id.js';
import { TurnBudget } from './api/turn-budget.js';
import { WatchHub } from './watch/hub.js';
import type { NodeId } from './raft/types.js';
import { LIMIT_SPECS, resolveLimits, SESSIONS_CEILING, type Limits } from './limits.js';
import { lockDataDir, RESTORE_MARKER } from './storage/data-dir-lock.js';

export const WARDEN_VERSION = '0.1.0';
export const HISTORY_REVISIONS_DEFAULT = 100_000;
/** How long a token from `authenticate` holds, by default (etcd's simple tokens: 5 minutes). */
export const AUTH_TOKEN_TTL_MS_DEFAULT = 300_000;
/** What the state machine itself refuses: the ceiling of --max-value-bytes (a member refuses above its own flag before proposing). */
const VALUE_BYTES_CEILING = LIMIT_SPECS.find((spec) => spec.key === 'valueBytesMax')!.ceiling!;

export interface ServerOptions {
  /** This member's name in the cluster (default "default"). */
  readonly name?: string;
  /** Where the WAL and the state store live (default ./warden-data). */
  readonly dataDir?: string;
  /** The client URL to listen on (default ws://127.0.0.1:7071; port 0 picks a free one). */
  readonly listenClient?: string;
  /** The peer URL to listen on (default ws://127.0.0.1:7081; port 0 picks a free one). */
  readonly listenPeer?: string;
  /**
   * The client URL the other members and clients are told (leader hints, /status), when it is not
   * the one listened on: a member listening on 0.0.0.0 in a container is reached by its name.
   */
  readonly advertiseClientUrl?: string;
  /** The space quota (default 2 GiB): past it the store raises NO_SPACE; under 80% of it the alarm clears itself. */
  readonly quotaBytes?: number;
  /** Compact the history older than this, in ms (0 or absent: by revision count only). */
  readonly autoCompactionRetentionMs?: number;
  /** Every member as name=peerURL, comma-separated (default: this member alone). */
  readonly initialCluster?: string;
  /** TLS on the client port (--cert-file, --key-file, --trusted-ca-file): wss:// and https:// for /health and /status. */
  readonly tls?: TlsFiles;
  /**
   * TLS between members (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file): both ends
   * present a certificate the peer CA signed (mutual TLS); a connection without one is refused.
   */
  readonly peerTls?: TlsFiles & { readonly trustedCaFile: string };
  /** A file holding the cluster secret (--peer-secret-file): every member's peer hello must prove it (an HMAC). */
  readonly peerSecretFile?: string;
  /** How long a token `authenticate` answers holds (ms; --auth-token-ttl in seconds). */
  readonly authTokenTtlMs?: number;
  /** The audit log's file (--audit-log); default: audit.log in the data directory. */
  readonly auditLog?: string;
  /** `new` (the default): the members of --initial-cluster start a cluster; `existing`: this member joins a running one (added first with `warden member add`). */
  readonly initialClusterState?: 'new' | 'existing';
  /** Milliseconds per Raft tick (heartbeat = 1 tick, election timeout = 10–20 ticks). */
  readonly tickMs?: number;
  /** Limits on what clients may ask (server/limits.ts); each defaults as `wardend --help` says. */
  readonly limits?: Partial<Limits>;
  /** Applied entries between snapshots: the store made durable, the log compacted (default 10,000). */
  readonly snapshotCount?: number;
  /** Entries kept below each snapshot for members a little behind (default 5,000). */
  readonly catchupEntries?: number;
  /** Or this many bytes of applied entries between snapshots, whichever first (default 64 MiB); half of it at most kept below. */
  readonly snapshotBytes?: number;
  /**
   * Serve linearizable reads on the leader from a read lease instead of a heartbeat round
   * (default off). Every member must set it alike. `leaseDriftPercent` (default 10) is how much
   * faster any member's clock may run than another's.
   */
  readonly leaseReads?: boolean;
  readonly leaseDriftPercent?: number;
  /** An idle watch that asked for progress gets a bookmark this often (default 10,000 ms). */
  readonly watchProgressMs?: number;
  /**
   * Called once if the member's storage fails (a failed fdatasync or store write). The member
   * has already stopped taking requests; `wardend` exits non-zero here. Default: log only.
   */
  readonly onFatal?: (error: Error) => void;
  readonly logger?: Logger;
}

export interface WardenServer {
  readonly name: NodeId;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly runtime: MemberRuntime;
  readonly limits: Limits;
  /** Read the TLS files again (SIGHUP): new connections use them; the errors of any that were bad (those keep the old). */
  reloadTls(): Error[];
  close(): Promise<void>;
}

/** A port this member was told to listen on is taken: which one, and by which flag. */
export class PortInUse extends Error {
  constructor(flag: string, host: string, port: number) {
    super(`${flag}: ${host}:${port} is already in use; stop what holds it or choose another port`);
    this.name = 'PortInUse';
  }
}

/** Listen errors as a reason a person can act on. */
function listenError(error: unknown, flag: string, host: string, port: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new PortInUse(flag, host, port);
  if (code === 'EACCES') return new Error(`${flag}: not allowed to listen on ${host}:${port} (a port below 1024 needs privileges)`);
  if (code === 'EADDRNOTAVAIL') return new Error(`${flag}: ${host} is not an address of this machine`);
  return error as Error;
}

/** Parse `n1=ws://host:7081,n2=...` into names and peer URLs; throws a clear error on a bad one. */
export function parseInitialCluster(text: string): Map<NodeId, string> {
  const members = new Map<NodeId, string>();
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)) {
    const at = part.indexOf('=');
    if (at <= 0) throw new Error(`--initial-cluster: "${part}" is not name=URL`);
    const name = part.slice(0, at);
    const url = part.slice(at + 1);
    if (!/^wss?:\/\/[^/]+/.test(url)) throw new Error(`--initial-cluster: the URL of ${name} ("${url}") is not ws://host:port`);
    if (members.has(name)) throw new Error(`--initial-cluster: ${name} appears twice`);
    members.set(name, url);
  }
  if (members.size === 0) throw new Error('--initial-cluster names no member');
  return members;
}

/** Bytes in a directory's files (not recursive): RocksDB and the WAL keep a flat handful. */
function directoryBytes(directory: string): number | null {
  try {
    let total = 0;
    for (const entry of readdirSync(directory, { withFileTypes: true })) if (entry.isFile()) total += statSync(join(directory, entry.name)).size;
    return total;
  } catch {
    return null;
  }
}

/** The cluster secret's bytes (surrounding whitespace, such as a final newline, is not part of it). */
function readSecret(path: string): Buffer {
  try {
    return Buffer.from(readFileSync(path, 'utf8').trim());
  } catch (error) {
    throw new Error(`--peer-secret-file: cannot read ${path}: ${(error as Error).message}`);
  }
}

function hostPort(url: string, flag: string, tls: boolean): { host: string; port: number } {
  const parsed = new URL(url);
  const wanted = tls ? 'wss:' : 'ws:';
  if (parsed.protocol !== wanted) throw new Error(`${flag}: ${url} must be a ${wanted}// URL${tls ? ' (TLS is on for this port)' : ' (TLS is off for this port: give its certificate and key to use wss://)'}`);
  return { host: parsed.hostname, port: parsed.port === '' ? (tls ? 443 : 80) : Number(parsed.port) };
}

export async function startServer(options: ServerOptions = {}): Promise<WardenServer> {
  const name = options.name ?? 'default';
  const dataDir = options.dataDir ?? './warden-data';
  const logger = options.logger ?? pino({ name: `wardend ${name}` });
  const log: RuntimeLogger = {
    info: (fields, message) => logger.info(fields, message),
    warn: (fields, message) => logger.warn(fields, message),
    error: (fields, message) => logger.error(fields, message),
  };
  const limits = resolveLimits(options.limits);
  const clientScheme = options.tls === undefined ? 'ws' : 'wss';
  const peerScheme = options.peerTls === undefined ? 'ws' : 'wss';
  const client = hostPort(options.listenClient ?? `${clientScheme}://127.0.0.1:7071`, '--listen-client', options.tls !== undefined);
  const peer = hostPort(options.listenPeer ?? `${peerScheme}://127.0.0.1:7081`, '--listen-peer', options.peerTls !== undefined);

  // What is opened so far, undone in reverse if a later step fails: a start that fails must
  // leave no port, lock or file handle behind (a process that stays up holding them hangs).
  const undo: (() => Promise<void> | void)[] = [];
  const unwind = async (): Promise<void> => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // best effort: the start already failed with its own reason
      }
    }
  };
  try {
    return await start();
  } catch (error) {
    await unwind();
    throw error;
  }

  async function start(): Promise<WardenServer> {
    const lock = await lockDataDir(dataDir);
    undo.push(() => lock.release());
    if (existsSync(join(dataDir, RESTORE_MARKER))) {
      throw new Error(`${dataDir} holds a snapshot restore that did not finish (${RESTORE_MARKER}): empty it and run \`warden snapshot restore\` again`);
    }
    // The client port is taken for good only once storage has recovered (which can take a
    // while); a port already busy is found out now, before that.
    await probePort(client.host, client.port).catch((error: unknown) => {
      throw listenError(error, '--listen-client', client.host, client.port);
    });

    // Peers first: with port 0 the real port is known only once listening, and it is this member's own entry.
    const peerServer = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    // With peer TLS only a member presenting a certificate the peer CA signed gets past the handshake.
    const peerPort = createPort(options.peerTls ?? null, (_request, response) => void response.writeHead(404).end(), options.peerTls !== undefined ? 'require' : 'none');
    const peerHttp = peerPort.server;
    peerHttp.on('upgrade', (request, socket, head) => {
      try {
        peerServer.handleUpgrade(request, socket, head, (ws) => peerServer.emit('connection', ws, request));
      } catch {
        socket.destroy();
      }
    });
    await peerPort.listen(peer.port, peer.host).catch((error: unknown) => {
      throw listenError(error, '--listen-peer', peer.host, peer.port);
    });
    peerHttp.on('error', (error) => logger.error({ event: 'peer_port_error', error: error.message }, 'the peer port failed'));
    undo.push(
      () =>
        new Promise<void>((resolve) => {
          peerServer.close();
          void peerPort.close().then(resolve);
        }),
    );
    const peerUrl = `${peerScheme}://${peer.host}:${peerPort.address().port}`;
    const cluster = parseInitialCluster(options.initialCluster ?? `${name}=${peerUrl}`);
    if (!cluster.has(name)) throw new Error(`--initial-cluster does not name this member (${name})`);
    // The transport takes the peer port's connections from now on: a peer that dials while the
    // storage below opens must find someone to answer its hello (an unanswered one used to leave
    // a half-open channel that the dialler took for a live one, and the pair never spoke).
    let clientUrl = options.listenClient ?? `${clientScheme}://127.0.0.1:7071`;
    // A member joining an existing cluster starts outside its configuration and without its id:
    // it takes the id from the first member that says hello, and the configuration from the
    // leader's log or snapshot (it was added as a learner first: `warden member add`).
    const joining = options.initialClusterState === 'existing';
    const clusterId = joining ? (readClusterId(dataDir) ?? undefined) : await clusterIdOf(dataDir, cluster);
    const adoptClusterId = joining && clusterId === undefined ? (id: string): void => void writeClusterId(dataDir, id).catch((error: Error) => logger.error({ event: 'cluster_id_write_failed', error: error.message }, `could not keep the cluster id: ${error.message}`)) : undefined;
    const peerTls = options.peerTls;
    const secret = options.peerSecretFile === undefined ? undefined : new PeerSecret(readSecret(options.peerSecretFile));
    const transport = new PeerTransport({ id: name, peers: cluster, clientUrl, logger: log, ...(clusterId === undefined ? {} : { clusterId }), ...(adoptClusterId === undefined ? {} : { adoptClusterId }), ...(peerTls === undefined ? {} : { tls: () => readTlsFiles(peerTls) }), ...(secret === undefined ? {} : { secret }) }, peerServer);
    undo.push(() => transport.close());

    // History is kept for the last 100,000 revisions (compacted automatically past twice that), so
    // memory and disk stay bounded under a steady write load; reads below it answer COMPACTED.
    // The state machine refuses only values past the ceiling of --max-value-bytes: the member's
    // own bound is checked before a write is proposed, so members with different flags agree.
    // The log first: its base decides whether a snapshot staged before a crash is swapped in.
    const { wal, log: recovered } = Wal.open(new NodeFileSystem(), join(dataDir, 'wal'), { logger: log });
    undo.push(() => wal.close());
    const home = await RocksStoreHome.open(join(dataDir, 'state'), recovered.base?.meta.index ?? null, { historyRevisions: HISTORY_REVISIONS_DEFAULT, valueBytesMax: VALUE_BYTES_CEILING, sessionsMax: SESSIONS_CEILING });
    undo.push(() => home.close());
    logger.info({ event: 'recovered', appliedIndex: home.store.machine.appliedIndex, lastIndex: recovered.lastIndex, term: recovered.hardState.term }, 'storage recovered');

    // The watch hub follows this member's applied revisions (a follower's clients watch it too).
    const hub = new WatchHub(() => runtime.machine.namespace, () => performance.now(), {
      watchesPerConnectionMax: limits.watchesPerConnectionMax,
      watchesMax: limits.watchesMax,
      fragmentBytesMax: limits.answerBytesMax,
    }, (what) => logger.error({ event: 'watch_invariant_broken', what }, `watch invariant: ${what}; the watch was ended instead`));
    const runtime: MemberRuntime = new MemberRuntime(
      {
        id: name,
        peers: [...cluster.keys()].filter((member) => !joining || member !== name).sort(),
        peerUrls: cluster,
        tickMs: options.tickMs ?? 100,
        turnChangesMax: limits.turnChangesMax,
        turnApplyMsMax: limits.turnApplyMsMax,
        writeNodesMax: limits.writeNodesMax,
        writePathBytesMax: limits.writePathBytesMax,
        ...(options.snapshotCount === undefined ? {} : { snapshotEvery: options.snapshotCount }),
        ...(options.catchupEntries === undefined ? {} : { keepEntries: options.catchupEntries }),
        ...(options.snapshotBytes === undefined ? {} : { snapshotBytes: options.snapshotBytes }),
        ...(options.leaseReads === true ? { leaseReads: { driftPercent: options.leaseDriftPercent ?? 10 } } : {}),
      },
      {
        clock: { monotonicMs: () => performance.now(), wallMs: () => Date.now() },
        timers: {
          setInterval: (run, ms) => setInterval(guarded(run, 'tick'), ms),
          clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
          defer: (run) => void setImmediate(guarded(run, 'turn')),
        },
        random: { intBelow: (bound) => randomInt(0, bound) },
        wal: observedWal(wal, (seconds) => metrics.observeWalSync(seconds)),
        recovered,
        home,
        link: observedLink(transport, (seconds, bytes) => metrics.observeSnapshot('sent', seconds, bytes)),
        logger: log,
        onFatal: (error) => options.onFatal?.(error),
        onApplied: (events) => hub.publish(events),
        onStoreReplaced: () => hub.storeReplaced(),
      },
    );
    // A timer callback that threw would take the process down: log it and go on (the runtime
    // and the hub answer their own failures; this is the last guard).
    function guarded(run: () => void, what: string): () => void {
      return () => {
        try {
          run();
        } catch (error) {
          logger.error({ event: 'timer_failed', what, error: (error as Error).message }, `a ${what} callback failed`);
        }
      };
    }
    undo.push(() => runtime.stop());
    // The event loop's delay, since start: what every client of this member waited on top of its
    // request. Sampled by a 10 ms timer whose whole interval the histogram records: the lag is
    // what passed beyond it.
    const LOOP_SAMPLE_MS = 10;
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
    loopDelay.enable();
    undo.push(() => void loopDelay.disable());
    // The data directory's sizes, read at most once a second: a flood of status requests must
    // not turn into a flood of directory scans.
    let sizes: { at: number; dbSize: number | null; walSize: number | null } | null = null;
    const diskSizes = (): { dbSize: number | null; walSize: number | null } => {
      const now = performance.now();
      if (sizes === null || now - sizes.at > 1_000) sizes = { at: now, dbSize: directoryBytes(join(dataDir, 'state')), walSize: directoryBytes(join(dataDir, 'wal')) };
      return { dbSize: sizes.dbSize, walSize: sizes.walSize };
    };
    let clientServer: ClientServer | null = null;
    const ops = startOperations({
      name,
      dataDir,
      runtime,
      home,
      hub,
      transport,
      limits,
      logger: log,
      diskSizes,
      connections: () => clientServer?.connections ?? 0,
      ...(options.quotaBytes === undefined ? {} : { quotaBytes: options.quotaBytes }),
      ...(options.autoCompactionRetentionMs === undefined ? {} : { autoCompactionRetentionMs: options.autoCompactionRetentionMs }),
    });
    undo.push(() => ops.stop());
    const metrics = ops.metrics;
    const answerBudget = new TurnBudget(limits.turnAnswerBytesMax, (error) => log.error({ event: 'answer_failed', error: (error as Error).message }, 'an answer waiting for a turn could not be sent'));
    const status = (): Record<string, unknown> => {
      const s = runtime.status;
      const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e4) / 100 - LOOP_SAMPLE_MS);
      return {
        name,
        id: name,
        clusterId,
        leader: s.leaderId,
        term: s.term,
        commit: s.commitIndex,
        applied: runtime.machine.appliedIndex,
        revision: runtime.machine.revision,
        members: runtime.members().map((m) => ({ name: m.name, role: m.role, peerUrl: m.peerUrl, clientUrl: transport.clientUrlOf(m.name), lag: m.lag })),
        ...diskSizes(),
        loopLagMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
        connections: clientServer?.connections ?? 0,
        watches: hub.size,
        sessions: runtime.machine.sessions.size,
        snapshots: { ...runtime.snapshots },
        leases: runtime.machine.leases.size,
        version: WARDEN_VERSION,
      };
    };
    const audit = fileAuditLog(options.auditLog ?? join(dataDir, 'audit.log'), name, (error) => logger.error({ event: 'audit_log_failed', error: error.message }, `the audit log cannot be written: ${error.message}`));
    undo.push(() => audit.close());
    const hasher = new PasswordHasher(limits.authQueueMax);
    const throttle = new FailureThrottle(limits.authFailuresTrackedMax, () => performance.now());
    const gate = new AuthGate({ machine: () => runtime.machine, wallMs: () => Date.now(), tokenTtlMs: options.authTokenTtlMs ?? AUTH_TOKEN_TTL_MS_DEFAULT, hasher, throttle, audit });
    const snapshots = new SnapshotStreams({ runtime, limits, member: () => ({ name, dbSize: diskSizes().dbSize ?? 0 }), logger: log });
    clientServer = await startClientServer({
      host: client.host,
      port: client.port,
      tls: options.tls ?? null,
      limits,
      answerBudget,
      logger: log,
      handlers: createHandlers({ runtime, hub, limits, answerBudget, snapshots, leaderUrl: (leader) => transport.clientUrlOf(leader), status, auth: { gate, hasher, audit } }),
      healthy: () => runtime.status.leaderId !== null && runtime.status.commitIndex - runtime.machine.appliedIndex < APPLIED_BEHIND_MAX,
      status,
      live: () => runtime.running,
      readiness: (exclude) => ops.readiness(exclude),
      metrics,
    }).catch((error: unknown) => {
      throw listenError(error, '--listen-client', client.host, client.port);
    });
    const clientPort = clientServer;
    undo.push(() => clientPort.close());
    clientUrl = options.advertiseClientUrl ?? `${clientScheme}://${client.host}:${clientPort.port}`;
    transport.setClientUrl(clientUrl);
    transport.start({
      onMessage: (message) => runtime.step(message),
      onForward: (entry) => runtime.proposeForwarded(entry),
      onLeaseRequest: (request) => runtime.answerLeaseRequest(request),
      onSnapshot: (message, chunks) => void runtime.receiveSnapshot(message, observedChunks(chunks, (seconds, bytes) => metrics.observeSnapshot('received', seconds, bytes))).catch(() => undefined), // logged by the runtime
    });
    runtime.start();
    const watchProgressMs = options.watchProgressMs ?? 10_000;
    const progressTimer = setInterval(guarded(() => hub.tick(watchProgressMs), 'watch progress'), Math.max(10, Math.min(1_000, watchProgressMs / 4)));
    logger.info({ event: 'started', clientUrl, peerUrl, members: cluster.size, clusterId }, 'member started');

    let closing: Promise<void> | null = null;
    return {
      name,
      clientUrl,
      peerUrl,
      runtime,
      limits,
      reloadTls: () => [clientPort.reloadTls(), peerPort.reload()].filter((error): error is Error => error !== null),
      close: () =>
        (closing ??= (async () => {
          // A leader first hands over to a follower, so the cluster does not wait out an election.
          if (await runtime.handOffLeadership(2_000)) logger.info({ event: 'leadership_handed_off', leader: runtime.status.leaderId }, 'handed leadership over');
          clearInterval(progressTimer);
          ops.stop(); // what acts on the member from timers stops first
          await clientPort.close();
          transport.close();
          await new Promise<void>((resolve) => {
            peerServer.close();
            peerHttp.close(() => resolve());
            peerHttp.closeAllConnections();
          });
          await runtime.stop();
          await home.close();
          await audit.close();
          loopDelay.disable();
          lock.release();
          logger.info({ event: 'stopped' }, 'member stopped');
        })()),
    };
  }
}

/** Listen on host:port and let go at once: rejects with the listen error (EADDRINUSE…) if it cannot. */
function probePort(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createHttpServer();
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export type { Limits } from './limits.js';
