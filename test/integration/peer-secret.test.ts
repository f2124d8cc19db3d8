/**
 * The cluster secret (--peer-secret-file), with real processes and no TLS: members that share it
 * form a cluster; a stranger — no proof, a wrong secret, or a replayed hello — is refused at the
 * hello with the reason, so its TimeoutNow never reaches the core, and the cluster goes on.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Encoder } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PeerSecret } from '../../server/transport/peer-secret.js';
import { Cluster, ProtocolClient } from './cluster.js';

const SECRET = 'correct horse battery staple, twice';
let dir: string;
let cluster: Cluster;

/** Say hello to n1's peer port as n2, with `proof` fields, then (unless `quiet`) TimeoutNow; how the connection ended. */
function stranger(proof: Record<string, unknown>, quiet = false): Promise<{ code: number; reason: string } | string> {
  const peerUrl = cluster.initialClusterSpec.split(',')[0]!.split('=')[1]!;
  return new Promise((resolve) => {
    const socket = new WebSocket(peerUrl, { handshakeTimeout: 3_000 });
    const encoder = new Encoder();
    socket.once('open', () => {
      socket.send(encoder.encode({ k: 'hello', from: 'n2', clientUrl: 'ws://127.0.0.1:1', ...proof }));
      if (quiet) socket.close(1000, 'done');
      else socket.send(encoder.encode({ k: 'raft', m: { type: 'TimeoutNow', from: 'n2', to: 'n1', term: 1_000 } }));
    });
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.once('error', (error) => resolve(error.message));
  });
}

describe('the cluster secret on the peer port', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-secret-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
    cluster = await Cluster.start(3, { extraArgs: ['--peer-secret-file', join(dir, 'secret')] });
    await cluster.leader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forms a cluster of members that share it, which takes writes', async () => {
    const leader = await cluster.leader();
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    expect(await client.request('put', { path: '/secret', value: Buffer.from('kept').toString('base64') })).toMatchObject({ ok: true });
    client.socket.close();
  });

  it('refuses a hello without a proof, with a wrong secret, or replayed, and the leader stays', async () => {
    const before = await cluster.leader();
    expect(await stranger({})).toEqual({ code: 1008, reason: 'the hello carries no proof of the cluster secret' });
    const wrong = new PeerSecret(Buffer.from('not the secret of this cluster')).helloProof('n2', 'n1');
    expect(await stranger({ ...wrong })).toEqual({ code: 1008, reason: 'the hello does not prove the cluster secret' });
    // A good proof is accepted once: the same hello again (a replay) is refused.
    const good = new PeerSecret(Buffer.from(SECRET)).helloProof('n2', 'n1');
    await stranger({ ...good }, true);
    expect(await stranger({ ...good })).toEqual({ code: 1008, reason: 'the hello repeats one already accepted' });
    expect(await cluster.leader()).toBe(before);
  });
});
