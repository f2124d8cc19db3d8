/**
 * Three real `wardend` processes on free ports: a leader is elected; writes go through every
 * member (followers forward them); a leader killed with SIGKILL loses no acknowledged write and
 * the others go on; bad frames get a clear error while a second client is unaffected.
 *
 * Must never: leave a process or a folder behind (afterAll stops the cluster).
 */

import { describe, expect, it } from 'vitest';
import { b64, Cluster, ProtocolClient, unb64 } from './cluster.js';
import { clusterForSuite } from './suite.js';

let cluster: Cluster;
clusterForSuite((started) => (cluster = started));

describe('a three-member wardend cluster', () => {
  it('takes writes through every member and reads them back linearizably from every member', async () => {
    const clients = await Promise.all(cluster.members.map((m) => ProtocolClient.connect(m.clientUrl)));
    for (const [i, client] of clients.entries()) {
      const answer = await client.request('put', { path: `/it/via-${i}`, value: b64(`written via n${i + 1}`) });
      expect(answer).toMatchObject({ ok: true, op: 'put' });
    }
    for (const client of clients) {
      for (let i = 0; i < clients.length; i++) {
        const got = await client.request('get', { path: `/it/via-${i}` });
        expect(got).toMatchObject({ ok: true, op: 'get' });
        expect(unb64((got['node'] as { value: string }).value)).toBe(`written via n${i + 1}`);
      }
    }
    for (const client of clients) client.close();
  }, 60_000);

  it('answers a put with the node\'s stat, not the value sent back; the previous node only when asked', async () => {
    const client = await ProtocolClient.connect(cluster.members[0]!.clientUrl);
    const first = await client.request('put', { path: '/it/shape', value: b64('one') });
    expect(first).toMatchObject({ ok: true, op: 'put', node: { path: '/it/shape', stat: { version: 0 } } });
    expect((first['node'] as Record<string, unknown>)['value']).toBeUndefined();
    expect(first['prevNode']).toBeUndefined();
    const second = await client.request('put', { path: '/it/shape', value: b64('two'), prevNode: true });
    expect(second).toMatchObject({ ok: true, node: { stat: { version: 1 } }, prevNode: { path: '/it/shape', stat: { version: 0 } } });
    expect(unb64((second['prevNode'] as { value: string }).value)).toBe('one');
    const created = await client.request('create', { path: '/it/shape-seq-', value: b64('x'), sequential: true });
    expect(created).toMatchObject({ ok: true, op: 'create', node: { path: expect.stringMatching(/^\/it\/shape-seq-\d+$/) } });
    expect((created['node'] as Record<string, unknown>)['value']).toBeUndefined();
    client.close();
  }, 60_000);

  it('answers bad frames with INVALID_ARGUMENT and keeps serving the same and other clients', async () => {
    const member = cluster.members[0]!;
    const bad = await ProtocolClient.connect(member.clientUrl);
    const good = await ProtocolClient.connect(member.clientUrl);
    expect(await bad.raw('{not json')).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await bad.request('frobnicate')).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('unknown request type') } });
    expect(await bad.request('put', { path: 42 })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await bad.request('put', { path: '/x', value: b64('v'), surprise: true })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await bad.request('put', { path: 'relative', value: b64('v') })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(await good.request('put', { path: '/it/good', value: b64('fine') })).toMatchObject({ ok: true });
    expect(await bad.request('get', { path: '/it/good' })).toMatchObject({ ok: true });
    expect(bad.closed).toBeNull();
    bad.close();
    good.close();
  }, 60_000);

  it('cuts off a client that does not read its answers, with a reason, and serves the others', async () => {
    const member = cluster.members[1]!;
    const writer = await ProtocolClient.connect(member.clientUrl);
    const big = Buffer.alloc(900 * 1024, 0x61).toString('base64');
    expect(await writer.request('put', { path: '/it/big', value: big })).toMatchObject({ ok: true });
    const sleeper = await ProtocolClient.connect(member.clientUrl);
    const closed = new Promise<number>((resolve) => sleeper.socket.once('close', (code) => resolve(code)));
    // Stop reading: the member's answers pile up in its socket buffer (about 1.2 MB each).
    (sleeper.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    for (let i = 0; i < 60; i++) sleeper.socket.send(JSON.stringify({ id: `g${i}`, type: 'get', path: '/it/big', consistency: 'serializable' }));
    // Meanwhile another client is served as usual.
    expect(await writer.request('put', { path: '/it/while-slow', value: b64('ok') })).toMatchObject({ ok: true });
    (sleeper.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    // Dropped (1006): a close and its reason would sit behind the 16 MiB it did not read.
    expect(await closed).toBe(1006);
    writer.close();
  }, 60_000);

  it('answers a flood from one socket (read at the pace of its answers: the member stops reading it at 256 in flight), serves another client meanwhile, and keeps every acknowledged write', async () => {
    const leader = await cluster.leader();
    const member = cluster.member(leader);
    const flooder = await ProtocolClient.connect(member.clientUrl);
    const other = await ProtocolClient.connect(member.clientUrl);
    const FLOOD = 12_000;
    const answers = new Map<number, Record<string, unknown>>();
    const allAnswered = new Promise<void>((resolve) => {
      flooder.socket.on('message', (data) => {
        const answer = JSON.parse(data.toString()) as Record<string, unknown>;
        answers.set(answer['id'] as number, answer);
        if (answers.size === FLOOD) resolve();
      });
    });
    // Sent in one burst, without waiting for any answer (the frames' ids are ours, not the client's).
    for (let i = 0; i < FLOOD; i++) flooder.socket.send(JSON.stringify({ id: 1_000_000 + i, type: 'put', path: `/flood/k${i % 500}`, value: b64(`f${i}`) }));
    // Another client is served while the flood is being worked through.
    expect(await other.request('put', { path: '/flood/other', value: b64('not starved') })).toMatchObject({ ok: true });
    await allAnswered;
    // Backpressure, not refusals: a frame past the in-flight bound could only come from data
    // already read when the socket was paused; any such refusal names the bound.
    const refused = [...answers.values()].filter((a) => a['ok'] === false);
    expect(refused.length).toBeLessThan(FLOOD / 2);
    for (const answer of refused) expect(answer).toMatchObject({ error: { code: 'RESOURCE_EXHAUSTED', outcome: 'retry', message: expect.stringContaining('in flight'), limit: { name: 'inFlightPerConnectionMax', flag: '--max-in-flight', value: 4096 } } });
    // The last acknowledged write of each key is what the key holds.
    const lastAcked = new Map<string, { value: string; revision: number }>();
    for (const [id, answer] of answers) {
      if (answer['ok'] !== true) continue;
      const i = id - 1_000_000;
      const key = `/flood/k${i % 500}`;
      const revision = answer['revision'] as number;
      if ((lastAcked.get(key)?.revision ?? 0) < revision) lastAcked.set(key, { value: `f${i}`, revision });
    }
    expect(lastAcked.size).toBeGreaterThan(0);
    for (const [key, { value }] of lastAcked) {
      const got = await other.request('get', { path: key });
      expect(unb64((got['node'] as { value: string }).value), key).toBe(value);
    }
    expect(flooder.closed).toBeNull();
    flooder.close();
    other.close();
  }, 120_000);

  it('closes a connection that sends an oversized frame, with a reason, and serves the others', async () => {
    const member = cluster.members[0]!;
    const big = await ProtocolClient.connect(member.clientUrl);
    const other = await ProtocolClient.connect(member.clientUrl);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => big.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    big.socket.send(JSON.stringify({ id: 1, type: 'put', path: '/big', value: 'A'.repeat(2 * 1024 * 1024) }));
    expect(await closed).toMatchObject({ code: 1009, reason: expect.stringContaining('--max-frame-bytes') });
    expect(await other.request('put', { path: '/it/after-big', value: b64('ok') })).toMatchObject({ ok: true });
    other.close();
  }, 60_000);

  it('loses no acknowledged write when the leader is killed with SIGKILL, and goes on', async () => {
    const leader = await cluster.leader();
    const client = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const acknowledged: number[] = [];
    for (let i = 0; i < 50; i++) {
      const answer = await client.request('put', { path: `/kill/${i}`, value: b64(`v${i}`) });
      if (answer['ok'] === true) acknowledged.push(i);
    }
    expect(acknowledged.length).toBe(50);
    client.close();
    await cluster.kill(leader);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    const survivor = await ProtocolClient.connect(cluster.member(next).clientUrl);
    for (const i of acknowledged) {
      const got = await survivor.request('get', { path: `/kill/${i}` });
      expect(unb64((got['node'] as { value: string }).value)).toBe(`v${i}`);
    }
    expect(await survivor.request('put', { path: '/kill/after', value: b64('yes') })).toMatchObject({ ok: true });
    survivor.close();
    cluster.launch(cluster.member(leader));
    await cluster.leader();
  }, 120_000);

  it('hands leadership to a follower when the leader is stopped with SIGTERM, and exits 0', async () => {
    const leader = await cluster.leader();
    const code = await cluster.kill(leader, 'SIGTERM');
    expect(code).toBe(0);
    expect(cluster.member(leader).logs.some((line) => line.includes('"leadership_handed_off"'))).toBe(true);
    const next = await cluster.leader();
    expect(next).not.toBe(leader);
    cluster.launch(cluster.member(leader));
    await cluster.leader();
  }, 120_000);

  it('applies a retried write exactly once after the leader is killed', async () => {
    const leader = await cluster.leader();
    const first = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const registered = await first.request('register');
    expect(registered).toMatchObject({ ok: true, op: 'registerClient' });
    const stamp = { id: registered['clientId'], seq: 1, ackedThrough: 0, secret: registered['secret'] };
    const created = await first.request('create', { path: '/once/job-', value: b64('j'), sequential: true, parents: true, client: stamp });
    expect(created).toMatchObject({ ok: true, op: 'create' });
    first.close();
    await cluster.kill(leader);
    const next = await cluster.leader();
    const second = await ProtocolClient.connect(cluster.member(next).clientUrl);
    // The client never saw the answer (say): it retries with the same stamp, through another member.
    const retried = await second.request('create', { path: '/once/job-', value: b64('j'), sequential: true, parents: true, client: stamp });
    expect(retried).toMatchObject({ ok: true, op: 'create', path: created['path'], revision: created['revision'] });
    const children = await second.request('children', { path: '/once' });
    expect(children['names']).toEqual([String(created['path']).slice('/once/'.length)]);
    second.close();
    cluster.launch(cluster.member(leader));
    await cluster.leader();
  }, 120_000);

  it('serves read-your-writes on a follower with minRevision', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m.name !== leader && m.process !== null)!;
    const writer = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    const reader = await ProtocolClient.connect(follower.clientUrl);
    const written = await writer.request('put', { path: '/ryw/k', value: b64('mine') });
    const got = await reader.request('get', { path: '/ryw/k', consistency: 'serializable', minRevision: written['revision'] });
    expect(got).toMatchObject({ ok: true });
    expect(unb64((got['node'] as { value: string }).value)).toBe('mine');
    writer.close();
    reader.close();
  }, 60_000);

  it('catches a restarted follower up with what it missed', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m.name !== leader && m.process !== null)!;
    await cluster.kill(follower.name);
    const writer = await ProtocolClient.connect(cluster.member(leader).clientUrl);
    let last: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) last = await writer.request('put', { path: `/missed/${i}`, value: b64(`m${i}`) });
    writer.close();
    cluster.launch(follower);
    const reader = await ProtocolClient.connect(follower.clientUrl).catch(async () => {
      await cluster.leader();
      return ProtocolClient.connect(follower.clientUrl);
    });
    const got = await reader.request('get', { path: '/missed/29', consistency: 'serializable', minRevision: last['revision'] });
    expect(unb64((got['node'] as { value: string }).value)).toBe('m29');
    reader.close();
  }, 60_000);
});
