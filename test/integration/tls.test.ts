/**
 * TLS on both ports, with real processes and certificates made by deploy/tls/make-certs.sh
 * (openssl): clients speak wss:// and https://, members authenticate each other with the peer CA
 * (mutual TLS), a plaintext client gets a readable refusal, a stranger — no certificate, or one
 * another CA signed — cannot open a peer channel (so cannot say TimeoutNow), and SIGHUP puts a
 * new certificate in service without a restart.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Encoder } from '@msgpack/msgpack';
import { WebSocket } from 'ws';
import { Cluster, ProtocolClient } from './cluster.js';
import { connect } from '../../client/index.js';
import { runCli } from '../cli/run.js';

const MAKE_CERTS = fileURLToPath(new URL('../../deploy/tls/make-certs.sh', import.meta.url));
const b64 = (text: string): string => Buffer.from(text).toString('base64');

let dir: string;
let rogue: string;
let cluster: Cluster;
let clientCa: Buffer;

/** GET a member's HTTPS path, trusting the cluster's client CA: status code and body. */
function getHttps(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { ca, timeout: 3_000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`${url}: no answer within 3 s`)));
    request.on('error', reject);
  });
}

/**
 * The leader every member names (one member's word is not enough: a follower whose peer channel
 * is still being set up knows no leader yet, and refuses a linearizable read at once).
 */
async function leaderOf(): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const named = await Promise.all(
      cluster.members.map(async (member) => {
        const status = await getHttps(`${member.httpUrl}/status`, clientCa).catch(() => null);
        return status?.status === 200 ? (JSON.parse(status.body) as { leader: string | null }).leader : null;
      }),
    );
    if (named[0] !== null && named.every((leader) => leader === named[0])) return named[0]!;
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, bounded by the deadline
  }
  throw new Error('the members did not agree on a leader over TLS within 30 s');
}

/** The certificate a TLS port presents now (its SHA-256 fingerprint). */
function presented(url: string, ca: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.setTimeout(3_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

describe('TLS on the client and peer ports', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
    rogue = mkdtempSync(join(tmpdir(), 'warden-tls-rogue-'));
    execFileSync('bash', [MAKE_CERTS, dir, 'n1', 'n2', 'n3']);
    // Another CA's certificates, under the same names: what a stranger could make.
    execFileSync('bash', [MAKE_CERTS, rogue, 'n1']);
    clientCa = readFileSync(join(dir, 'client-ca.pem'));
    cluster = await Cluster.start(3, { tlsDir: dir });
    await leaderOf();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(rogue, { recursive: true, force: true });
  });

  it('serves clients over wss:// and /health over https://, and the members replicate over mutual TLS', async () => {
    const leader = await leaderOf();
    // What the members said, should a step fail (the failure alone does not say which member did what).
    const logs = (): string => cluster.members.map((m) => `${m.name}: ${m.logs.slice(-8).join('\n')}`).join('\n');
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl, { ca: clientCa }).catch((error: Error) => {
      throw new Error(`connecting to the leader ${leader} failed: ${error.message}; logs:\n${logs()}`);
    });
    expect(await client.request('put', { path: '/tls', value: b64('yes') })).toMatchObject({ ok: true });
    client.socket.close();
    // Read back through a follower: the write travelled the peer port.
    const follower = cluster.members.find((m) => m.name !== leader)!;
    const reader = await ProtocolClient.connect(follower.clientUrl, { ca: clientCa });
    const read = await reader.request('get', { path: '/tls' });
    if (read['ok'] !== true) throw new Error(`the read through ${follower.name} failed: ${JSON.stringify(read)}; logs:\n${logs()}`);
    expect(read).toMatchObject({ ok: true, node: { value: b64('yes') } });
    reader.socket.close();
    expect(await getHttps(`${follower.httpUrl}/health`, clientCa)).toMatchObject({ status: 200 });
  });

  it('is reached over wss:// by the client library (tls: { ca }) and the CLI (--cacert), and refused without the CA', async () => {
    const endpoints = cluster.members.map((m) => m.clientUrl).join(',');
    const client = connect({ endpoints, tls: { ca: clientCa }, timeoutMs: 10_000 });
    try {
      await client.put('/library', 'over tls');
      expect(await client.get('/library')).toMatchObject({ value: 'over tls' });
    } finally {
      await client.close();
    }
    const caFile = join(dir, 'client-ca.pem');
    const read = await runCli(['--cacert', caFile, '--output', 'json', 'get', '/library'], { endpoints });
    expect(read.code).toBe(0);
    expect(read.stdout).toContain('over tls');
    // Without the CA the members' certificates are not trusted: the call fails, it does not fall back.
    const untrusted = await runCli(['--timeout', '2000', 'get', '/library'], { endpoints });
    expect(untrusted.code).toBe(1);
  });

  it('refuses plaintext on a TLS port with a reason a person can read', async () => {
    const member = cluster.members[0]!;
    const plainHttp = member.httpUrl.replace('https://', 'http://');
    const answer = await fetch(`${plainHttp}/health`, { signal: AbortSignal.timeout(3_000) });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/this port speaks TLS: connect with wss:\/\/ or https:\/\//);
    const refused = await new Promise<string>((resolve) => {
      const socket = new WebSocket(member.clientUrl.replace('wss://', 'ws://'));
      socket.once('open', () => resolve('opened'));
      socket.once('error', (error) => resolve(error.message));
    });
    expect(refused).toMatch(/400/);
  });

  it('refuses a peer without a certificate the peer CA signed — a stranger cannot say TimeoutNow — and the cluster goes on', async () => {
    const before = await leaderOf();
    const peerUrl = `wss://127.0.0.1:${new URL(cluster.initialClusterSpec.split(',')[0]!.split('=')[1]!).port}`;
    const tryPeer = (options: WebSocket.ClientOptions): Promise<string> =>
      new Promise((resolve) => {
        const socket = new WebSocket(peerUrl, { ...options, handshakeTimeout: 3_000 });
        socket.once('open', () => {
          // Were it let in, this is the frame that moved leadership.
          socket.send(JSON.stringify({ k: 'raft', m: { type: 'TimeoutNow', from: 'n2', to: 'n1', term: 1_000 } }));
          resolve('opened');
        });
        socket.once('error', (error) => resolve(error.message));
      });
    const peerCa = readFileSync(join(dir, 'peer-ca.pem'));
    // No certificate at all.
    expect(await tryPeer({ ca: peerCa })).not.toBe('opened');
    // A certificate under a member's name, from another CA.
    expect(await tryPeer({ ca: peerCa, cert: readFileSync(join(rogue, 'n1', 'peer.pem')), key: readFileSync(join(rogue, 'n1', 'peer.key')) })).not.toBe('opened');
    expect(await leaderOf()).toBe(before);
    const client = await ProtocolClient.connect(cluster.member(before).clientUrl, { ca: clientCa });
    expect(await client.request('put', { path: '/after-strangers', value: b64('fine') })).toMatchObject({ ok: true });
    client.socket.close();
  });

  it("refuses one member's certificate speaking for another (the peer CA signed it, but it names someone else)", async () => {
    const peerUrl = `wss://127.0.0.1:${new URL(cluster.initialClusterSpec.split(',')[0]!.split('=')[1]!).port}`;
    const closed = await new Promise<{ code: number; reason: string } | string>((resolve) => {
      const socket = new WebSocket(peerUrl, { ca: readFileSync(join(dir, 'peer-ca.pem')), cert: readFileSync(join(dir, 'n2', 'peer.pem')), key: readFileSync(join(dir, 'n2', 'peer.key')), handshakeTimeout: 3_000 });
      socket.once('open', () => socket.send(new Encoder().encode({ k: 'hello', from: 'n3', clientUrl: 'wss://127.0.0.1:1' })));
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      socket.once('error', (error) => resolve(error.message));
    });
    expect(closed).toEqual({ code: 1008, reason: 'the certificate names n2, localhost, not n3' });
  });

  it('puts a new certificate in service on SIGHUP, without a restart', async () => {
    const member = cluster.members[2]!;
    const old = await presented(member.clientUrl, clientCa);
    // New certificates for n3 from the same CA (make-certs.sh keeps the CA, remakes the member's).
    execFileSync('bash', [MAKE_CERTS, dir, member.name]);
    member.process!.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    let now = old;
    while (now === old && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, bounded by the deadline
      now = await presented(member.clientUrl, clientCa);
    }
    expect(now).not.toBe(old);
    expect(member.logs.some((line) => line.includes('tls_reloaded'))).toBe(true);
    expect(await getHttps(`${member.httpUrl}/health`, clientCa)).toMatchObject({ status: 200 });
  });
});
