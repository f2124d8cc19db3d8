#!/usr/bin/env node
/**
 * `wardend`: one Warden member. With no flags, a single-member cluster on ws://127.0.0.1:7071
 * with its data in ./warden-data; with --name, --data-dir, --listen-client, --listen-peer and
 * --initial-cluster, a member of a cluster. Every flag is also a WARDEN_* environment variable
 * (--data-dir as WARDEN_DATA_DIR). SIGTERM or Ctrl-C stops it cleanly (exit 0).
 *
 * Must never: print with console.log (logs are pino, one event per line; human-readable on a
 * terminal); exit 0 after a failure; stay up after a failed start (it exits 1 within a second,
 * saying why: a port taken, the data directory held by another member or damaged).
 */

import { pino } from 'pino';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startServer } from './server.js';
import { LIMIT_SPECS, limitsFrom } from './limits.js';
import { NOT_WARDEND_ENV } from '../shared/env.js';
import { parseRetention } from './auto-compaction.js';

// The CLI's and `npm start`'s variables are theirs: set aside, so they are not unknown flags here.
for (const name of NOT_WARDEND_ENV) delete process.env[name];

const parser = yargs(hideBin(process.argv))
  .scriptName('wardend')
  .usage('$0 [options]\n\nRun one Warden member. With no options: a one-member cluster on ws://127.0.0.1:7071, data in ./warden-data.')
  .env('WARDEN')
  .option('name', { type: 'string', default: 'default', describe: "this member's name, as --initial-cluster spells it" })
  .option('data-dir', { type: 'string', default: './warden-data', describe: 'where the write-ahead log (wal/) and the state store (state/) live' })
  .option('listen-client', { type: 'string', describe: 'URL for clients (WebSocket) and HTTP /health, /status (default ws://127.0.0.1:7071, wss:// with --cert-file)' })
  .option('advertise-client-url', { type: 'string', describe: 'the client URL other members and clients are given (leader hints, /status) when it differs from --listen-client (e.g. ws://0.0.0.0:7071 in a container, reached as ws://warden-0.warden-peer:7071)' })
  .option('quota-bytes', { type: 'number', default: 2 * 1024 * 1024 * 1024, describe: 'the space quota: past it this member raises NO_SPACE and the cluster refuses writes that add data (deletes, compactions and reads go on); under 80% of it the alarm clears by itself' })
  .option('auto-compaction-retention', { type: 'string', default: '0', describe: 'compact the history older than this (1h, 30m, 90s; a bare number is hours; 0: off) — besides the automatic compaction past 200,000 revisions' })
  .option('listen-peer', { type: 'string', describe: 'URL for the other members (default ws://127.0.0.1:7081, wss:// with --peer-cert-file)' })
  .option('cert-file', { type: 'string', group: 'TLS:', describe: "the client port's certificate (PEM): clients connect with wss://, /health and /status are https://" })
  .option('key-file', { type: 'string', group: 'TLS:', describe: 'the key of --cert-file (PEM)' })
  .option('trusted-ca-file', { type: 'string', group: 'TLS:', describe: 'the CA that signs client certificates (PEM); with it, every client must present one (its CN names a user when auth is on)' })
  .option('peer-cert-file', { type: 'string', group: 'TLS:', describe: "this member's certificate for the peer port (PEM), signed by the peer CA" })
  .option('peer-key-file', { type: 'string', group: 'TLS:', describe: 'the key of --peer-cert-file (PEM)' })
  .option('peer-secret-file', { type: 'string', group: 'TLS:', describe: 'a file holding the cluster secret (at least 16 bytes, the same on every member): without peer TLS, a peer connection must prove it (HMAC on its hello)' })
  .option('peer-trusted-ca-file', { type: 'string', group: 'TLS:', describe: 'the peer CA (PEM): a member accepts and dials only peers whose certificate it signed' })
  .option('auth-token-ttl', { type: 'number', default: 300, group: 'Auth:', describe: 'seconds a token from authenticate holds (a client holding the password authenticates again by itself)' })
  .option('audit-log', { type: 'string', group: 'Auth:', describe: 'the audit log file: every login, auth/user/role change, compaction and permission refusal, with user and source (default: audit.log in --data-dir)' })
  .check((argv) => {
    if (!Number.isSafeInteger(argv['auth-token-ttl']) || (argv['auth-token-ttl'] as number) < 1) throw new Error('--auth-token-ttl must be a positive number of seconds');
    if ((argv['cert-file'] === undefined) !== (argv['key-file'] === undefined)) throw new Error('--cert-file and --key-file go together');
    const peer = [argv['peer-cert-file'], argv['peer-key-file'], argv['peer-trusted-ca-file']].filter((v) => v !== undefined).length;
    if (peer !== 0 && peer !== 3) throw new Error('--peer-cert-file, --peer-key-file and --peer-trusted-ca-file go together (members authenticate each other)');
    return true;
  })
  .option('initial-cluster', { type: 'string', describe: 'every member as name=peerURL, comma-separated (default: this member alone)' })
  .option('initial-cluster-state', { type: 'string', default: 'new', choices: ['new', 'existing'], describe: 'new: the members of --initial-cluster start a cluster; existing: this member joins a running cluster (add it first: warden member add NAME PEER_URL), starting empty and catching up from the leader' })
  .option('tick-ms', { type: 'number', default: 100, describe: 'Raft tick: heartbeats every tick, elections after 10–20 ticks without a leader' })
  .option('snapshot-count', { type: 'number', default: 10_000, describe: 'applied entries between snapshots: the store is made durable and the log compacted up to it' })
  .option('snapshot-bytes', { type: 'number', default: 64 * 1024 * 1024, describe: 'or this many bytes of applied entries between snapshots, whichever comes first (the log is held in memory until compacted); at most half of it is kept below a snapshot' })
  .option('catchup-entries', { type: 'number', default: 5_000, describe: 'entries kept below each snapshot, so a member a little behind catches up from the log, not a whole snapshot' })
  .option('lease-reads', { type: 'boolean', default: false, describe: 'serve linearizable reads on the leader from a read lease, without a heartbeat round (every member must set it alike)' })
  .option('lease-drift-percent', { type: 'number', default: 10, describe: 'with --lease-reads: how much faster any member\'s clock may run than another\'s; the lease shrinks by it' })
  .option('watch-progress-ms', { type: 'number', default: 10_000, describe: 'how often an idle watch that asked for progress gets a bookmark (the current revision)' })
  .option('log-level', { type: 'string', default: 'info', choices: ['debug', 'info', 'warn', 'error'] })
  .option('log-format', { type: 'string', default: 'auto', choices: ['auto', 'json', 'pretty'], describe: 'auto: pretty on a terminal, JSON lines otherwise' })
  .example('$0', 'one member, for development')
  .example('$0 --name n1 --data-dir data/n1 --listen-client ws://10.0.0.1:7071 --listen-peer ws://10.0.0.1:7081 --initial-cluster n1=ws://10.0.0.1:7081,n2=ws://10.0.0.2:7081,n3=ws://10.0.0.3:7081', 'a member of a three-member cluster')
  .strict()
  .help();
// Every limit (server/limits.ts) is a flag and a WARDEN_* variable, described where it is defined.
for (const spec of LIMIT_SPECS) {
  parser.option(spec.flag, { type: 'number', default: spec.defaultValue, group: 'Limits:', describe: `${spec.what} (${spec.unit}); past it: ${spec.past}` });
}
const argv = await parser.parse();
const limits = limitsFrom((spec) => argv[spec.flag] as number);

const logger = pino({
  level: argv['log-level'],
  base: { member: argv.name },
  ...(argv['log-format'] === 'pretty' || (argv['log-format'] === 'auto' && process.stdout.isTTY) ? { transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } } : {}),
});

try {
  const server = await startServer({
    name: argv.name,
    dataDir: argv['data-dir'],
    ...(argv['listen-client'] === undefined ? {} : { listenClient: argv['listen-client'] }),
    ...(argv['listen-peer'] === undefined ? {} : { listenPeer: argv['listen-peer'] }),
    ...(argv['advertise-client-url'] === undefined ? {} : { advertiseClientUrl: argv['advertise-client-url'] }),
    quotaBytes: argv['quota-bytes'],
    autoCompactionRetentionMs: parseRetention(argv['auto-compaction-retention']),
    ...(argv['cert-file'] === undefined || argv['key-file'] === undefined ? {} : { tls: { certFile: argv['cert-file'], keyFile: argv['key-file'], ...(argv['trusted-ca-file'] === undefined ? {} : { trustedCaFile: argv['trusted-ca-file'] }) } }),
    ...(argv['peer-secret-file'] === undefined ? {} : { peerSecretFile: argv['peer-secret-file'] }),
    ...(argv['peer-cert-file'] === undefined || argv['peer-key-file'] === undefined || argv['peer-trusted-ca-file'] === undefined ? {} : { peerTls: { certFile: argv['peer-cert-file'], keyFile: argv['peer-key-file'], trustedCaFile: argv['peer-trusted-ca-file'] } }),
    ...(argv['initial-cluster'] === undefined ? {} : { initialCluster: argv['initial-cluster'] }),
    tickMs: argv['tick-ms'],
    limits,
    authTokenTtlMs: argv['auth-token-ttl'] * 1000,
    initialClusterState: argv['initial-cluster-state'] as 'new' | 'existing',
    ...(argv['audit-log'] === undefined ? {} : { auditLog: argv['audit-log'] }),
    snapshotCount: argv['snapshot-count'],
    snapshotBytes: argv['snapshot-bytes'],
    catchupEntries: argv['catchup-entries'],
    watchProgressMs: argv['watch-progress-ms'],
    leaseReads: argv['lease-reads'],
    leaseDriftPercent: argv['lease-drift-percent'],
    logger,
    // A failed fdatasync or store write: what this member believed durable may not be. It
    // must not serve another request; exit non-zero so a supervisor restarts it on recovery.
    onFatal: (error) => {
      logger.fatal({ event: 'storage_failed', error: error.message }, `wardend stops: ${error.message}`);
      process.exit(2);
    },
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'signal', signal }, 'stopping');
    server.close().then(
      () => process.exit(0),
      (error: Error) => {
        logger.error({ event: 'stop_failed', error: error.message }, 'could not stop cleanly');
        process.exit(1);
      },
    );
  };
  // New certificates without a restart: new connections use them; bad files keep the old ones.
  process.on('SIGHUP', () => {
    const errors = server.reloadTls();
    if (errors.length === 0) logger.info({ event: 'tls_reloaded' }, 'TLS certificates reloaded');
    else for (const error of errors) logger.error({ event: 'tls_reload_failed', error: error.message }, `TLS certificates not reloaded, the old ones stay: ${error.message}`);
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (error) {
  // startServer released what it had opened; nothing may keep this process up (a member that
  // failed to start but holds its peer port and data directory looks alive to everyone).
  logger.fatal({ event: 'start_failed', error: (error as Error).message }, `wardend could not start: ${(error as Error).message}`);
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 500);
}
