/**
 * Client certificates as identities, on a real member with TLS and `--trusted-ca-file`: a client
 * without a certificate from that CA is refused (401) while /health still answers; with auth on,
 * a certificate's CN names the user it speaks as (a user added without a password comes in only
 * this way), a CN that names no user is refused, and the audit log records the client's real
 * address even though the TLS socket wraps the port's own stream.
 *
 * Must never: wait without a bound; leave a process or a folder behind.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient } from './cluster.js';

const MAKE_CERTS = fileURLToPath(new URL('../../deploy/tls/make-certs.sh', import.meta.url));

let dir: string;
let cluster: Cluster;
let ca: Buffer;

/** A client certificate for `cn`, signed by the cluster's client CA (openssl, as the README shows). */
function clientCert(cn: string): { cert: Buffer; key: Buffer } {
  const key = join(dir, `${cn}.key`);
  const csr = join(dir, `${cn}.csr`);
  const cert = join(dir, `${cn}.pem`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', join(dir, 'client-ca.pem'), '-CAkey', join(dir, 'client-ca.key'), '-days', '1', '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

describe('client certificates', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-certs-'));
    execFileSync('bash', [MAKE_CERTS, dir, 'n1']);
    ca = readFileSync(join(dir, 'client-ca.pem'));
    cluster = await Cluster.start(1, { tlsDir: dir, extraArgs: ['--trusted-ca-file', join(dir, 'client-ca.pem')] });
    await cluster.leader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a client without a certificate from the trusted CA, and answers /health without one', async () => {
    const member = cluster.members[0]!;
    const refused = await ProtocolClient.connect(member.clientUrl, { ca }).then(
      () => 'opened',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/401/);
    expect(await cluster.status('n1')).not.toBeNull();
  });

  it('names the user by the certificate\'s CN once auth is on', async () => {
    const url = cluster.members[0]!.clientUrl;
    const root = await ProtocolClient.connect(url, { ca, ...clientCert('root') });
    for (const [type, fields] of [
      ['userAdd', { name: 'root', password: 'root-pw' }],
      ['userAdd', { name: 'carol' }],
      ['roleAdd', { name: 'a-reader' }],
      ['roleGrant', { name: 'a-reader', path: '/a', access: 'read' }],
      ['userGrantRole', { name: 'carol', role: 'a-reader' }],
      ['put', { path: '/a', value: b64('a') }],
      ['authEnable', {}],
    ] as const) {
      expect(await root.request(type, fields), type).toMatchObject({ ok: true });
    }
    expect(await root.request('authStatus')).toMatchObject({ enabled: true, user: 'root' });
    const carol = await ProtocolClient.connect(url, { ca, ...clientCert('carol') });
    expect(await carol.request('authStatus')).toMatchObject({ user: 'carol' });
    expect(await carol.request('get', { path: '/a' })).toMatchObject({ ok: true });
    expect(await carol.request('put', { path: '/a', value: b64('x') })).toMatchObject({ ok: false, error: { code: 'PERMISSION_DENIED' } });
    // carol has no password: it comes in by certificate only.
    const plain = await ProtocolClient.connect(url, { ca, ...clientCert('mallory') });
    expect(await plain.request('authenticate', { user: 'carol', password: 'guess' })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await plain.request('get', { path: '/a' })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    for (const c of [root, carol, plain]) c.close();

    const file = join(cluster.dataDirOf('n1'), 'audit.log');
    const deadline = Date.now() + 10_000;
    let denied: Record<string, unknown> | undefined;
    while (denied === undefined && Date.now() < deadline) {
      if (existsSync(file)) denied = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['action'] === 'denied');
      if (denied === undefined) await new Promise((resolve) => setTimeout(resolve, 100)); // polling interval, bounded by the deadline
    }
    expect(denied).toMatchObject({ user: 'carol', source: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });
});
