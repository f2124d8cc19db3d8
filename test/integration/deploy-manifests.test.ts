/**
 * The deploy files form a cluster: each manifest is read (compose and Kubernetes with a YAML
 * library, the Dockerfile's ENV and ENTRYPOINT, the systemd unit and its environment files), the
 * command, arguments and environment it would give each member are extracted — Kubernetes'
 * $(VAR) expansion and fieldRefs, systemd's %i, compose's merge keys, the image's defaults
 * included — and three real members are started with exactly those, on loopback: only member
 * host names become 127.0.0.1, their ports free ones, and data and secret paths temporary ones.
 * The three must agree on a leader, be ready (/readyz), and take a write on one member that
 * another reads back. The Kubernetes members run TLS on both ports from their mounted Secret
 * (certificates from deploy/tls/make-certs.sh, laid out as the Secret's comment says). No container engine runs here; `docker build` is documented, not run.
 *
 * Must never: wait without a bound; leave a process or a folder behind; pass a manifest whose
 * URLs point at a host or port it does not know (that is a manifest that could not work).
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as requestHttps } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { b64, freePort, ProtocolClient, unb64, until } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'server/main.ts');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** What a manifest gives one member: its host names (as peers and clients reach it), arguments and environment. */
interface MemberSpec {
  readonly hosts: readonly string[];
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The image's defaults: its ENV lines (with line continuations) and the arguments its ENTRYPOINT passes after the script. */
function dockerImage(): { readonly env: Record<string, string>; readonly entrypoint: readonly string[] } {
  const text = read('deploy/docker/Dockerfile').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const runtime = stages[stages.length - 1]!;
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const match of line.slice(4).matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g)) env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
  }
  const entry = runtime.split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  const entrypoint = JSON.parse(entry!.slice('ENTRYPOINT '.length)) as string[];
  expect(entrypoint.slice(0, 2)).toEqual(['node', '/app/dist/server/main.js']);
  return { env, entrypoint: entrypoint.slice(2) };
}

function fromCompose(): MemberSpec[] {
  const image = dockerImage();
  const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, { hostname?: string; command?: string[]; environment?: Record<string, string>; build?: { dockerfile?: string } }> };
  return Object.entries(compose.services).map(([service, s]) => {
    expect(s.build?.dockerfile).toBe('deploy/docker/Dockerfile');
    return { hosts: [service, s.hostname ?? service], args: [...image.entrypoint, ...(s.command ?? [])], env: { ...image.env, ...(s.environment ?? {}) } };
  });
}

function fromKubernetes(namespace = 'default'): MemberSpec[] {
  const docs = parseAllDocuments(read('deploy/k8s/statefulset.yaml')).map((d) => d.toJS() as Record<string, unknown>);
  const set = docs.find((d) => d['kind'] === 'StatefulSet') as { metadata: { name: string }; spec: { replicas: number; serviceName: string; template: { spec: { containers: { args?: string[]; command?: string[]; env?: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[] }[] } } } };
  const services = parseAllDocuments(read('deploy/k8s/services.yaml')).map((d) => d.toJS() as { metadata: { name: string }; spec: { clusterIP?: string } });
  expect(services.find((s) => s.metadata.name === set.spec.serviceName)?.spec.clusterIP).toBe('None'); // the peers' headless Service
  const image = dockerImage();
  const container = set.spec.template.spec.containers[0]!;
  return Array.from({ length: set.spec.replicas }, (_, ordinal) => {
    const pod = `${set.metadata.name}-${ordinal}`;
    const fields: Record<string, string> = { 'metadata.name': pod, 'metadata.namespace': namespace };
    // Kubernetes expands $(VAR) from the variables defined before it (and the image's).
    const env: Record<string, string> = { ...image.env };
    const expand = (text: string): string => text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
    for (const variable of container.env ?? []) env[variable.name] = variable.value !== undefined ? expand(variable.value) : fields[variable.valueFrom!.fieldRef.fieldPath]!;
    const args = [...(container.command ?? image.entrypoint), ...(container.args ?? [])].map(expand);
    return { hosts: [`${pod}.${set.spec.serviceName}.${namespace}.svc.cluster.local`, `${pod}.${set.spec.serviceName}`], args, env };
  });
}

function fromSystemd(): MemberSpec[] {
  const unit = read('deploy/systemd/wardend@.service');
  return ['n1', 'n2', 'n3'].map((instance, i) => {
    const lines = unit.split('\n').map((l) => l.replaceAll('%i', instance));
    const env: Record<string, string> = {};
    for (const line of lines) {
      if (line.startsWith('EnvironmentFile=')) {
        const file = line.slice('EnvironmentFile='.length).replace('/etc/warden/', 'deploy/systemd/');
        for (const l of read(file).split('\n')) if (/^[A-Z_]+=/.test(l)) env[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
      }
    }
    for (const line of lines) if (line.startsWith('Environment=')) {
      const [name, ...value] = line.slice('Environment='.length).split('=');
      env[name!] = value.join('=');
    }
    const exec = lines.find((l) => l.startsWith('ExecStart='))!.slice('ExecStart='.length).split(/\s+/);
    expect(exec[0]).toBe('/usr/bin/wardend');
    return { hosts: [`10.0.0.${i + 1}`], args: exec.slice(1), env };
  });
}

interface Started {
  readonly clientPorts: readonly number[];
  readonly processes: ChildProcess[];
  readonly logs: string[][];
}

const running: { processes: ChildProcess[]; dirs: string[] }[] = [];

afterEach(async () => {
  for (const run of running.splice(0)) {
    await Promise.all(run.processes.map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    })));
    for (const dir of run.dirs) rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Start the members as specified (startOnce), again on fresh ports if a member found one of its
 * ports taken between the pick and its bind (another test's process took it): a race of the
 * harness, not of the manifests.
 */
async function start(specs: readonly MemberSpec[], paths: Readonly<Record<string, string>> = {}): Promise<Started> {
  for (let attempt = 1; ; attempt++) {
    const started = await startOnce(specs, paths);
    const outcomes = await Promise.all(started.processes.map((child, i) => startOutcome(child, started.logs[i]!)));
    if (!outcomes.some((o) => o === 'port taken') || attempt === 3) return started;
    for (const child of started.processes) child.kill('SIGKILL');
  }
}

/** Whether a member started, or exited because a port it was given is taken (bounded: 20 s). */
function startOutcome(child: ChildProcess, logs: readonly string[]): Promise<'started' | 'port taken' | 'other'> {
  const seen = (): 'started' | 'port taken' | null => (logs.some((l) => l.includes('"event":"started"')) ? 'started' : logs.some((l) => l.includes('already in use')) ? 'port taken' : null);
  return new Promise((resolve) => {
    const check = (): void => {
      const outcome = seen();
      if (outcome === null) return;
      finish(outcome);
    };
    const timer = setTimeout(() => finish('other'), 20_000);
    const finish = (outcome: 'started' | 'port taken' | 'other'): void => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('close', onClose);
      resolve(outcome);
    };
    const onData = (): void => void setImmediate(check); // after the line is kept
    const onClose = (): void => finish(seen() ?? 'other');
    child.stdout!.on('data', onData);
    child.once('close', onClose);
    check();
  });
}

/** Start the members as specified, on loopback: member hosts → 127.0.0.1, their ports → free ones, data and secret → temporary paths. */
async function startOnce(specs: readonly MemberSpec[], paths: Readonly<Record<string, string>> = {}): Promise<Started> {
  const clientPorts = await Promise.all(specs.map(() => freePort()));
  const peerPorts = await Promise.all(specs.map(() => freePort()));
  const root = mkdtempSync(join(tmpdir(), 'warden-deploy-'));
  const run = { processes: [] as ChildProcess[], dirs: [root] };
  running.push(run);
  const secret = join(root, 'peer-secret');
  writeFileSync(secret, 'a cluster secret of enough bytes\n');
  const hostIndex = (host: string, self: number): number => {
    if (host === '0.0.0.0' || host === '127.0.0.1') return self;
    const index = specs.findIndex((s) => s.hosts.includes(host));
    if (index < 0) throw new Error(`a URL names the host ${host}, which is no member of this manifest`);
    return index;
  };
  const rewrite = (text: string, self: number): string =>
    text.replace(/(wss?):\/\/([^:/,\s]+):(\d+)/g, (_, scheme: string, host: string, port: string) => {
      const index = hostIndex(host, self);
      if (port === '7071') return `${scheme}://127.0.0.1:${clientPorts[index]}`;
      if (port === '7081') return `${scheme}://127.0.0.1:${peerPorts[index]}`;
      throw new Error(`a URL names port ${port} of ${host}: members listen on 7071 (clients) and 7081 (peers)`);
    });
  const logs = specs.map(() => [] as string[]);
  specs.forEach((spec, i) => {
    const dataDir = join(root, `member-${i}`);
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !name.startsWith('WARDEN_')) env[name] = value;
    // A mounted directory (a Kubernetes Secret) is a temporary one here.
    const mapped = (text: string): string => Object.entries(paths).reduce((t, [from, to]) => t.replaceAll(from, to), text);
    for (const [name, value] of Object.entries(spec.env)) env[name] = mapped(rewrite(value, i));
    if (env['WARDEN_DATA_DIR'] !== undefined) env['WARDEN_DATA_DIR'] = dataDir;
    if (env['WARDEN_PEER_SECRET_FILE'] !== undefined) env['WARDEN_PEER_SECRET_FILE'] = secret;
    const args = spec.args.map((arg) => mapped(rewrite(arg, i)));
    expect(env['WARDEN_DATA_DIR'] ?? args.find((a) => a.startsWith('--data-dir')), 'a data directory').toBeDefined();
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--tick-ms', '50'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => void logs[i]!.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    run.processes.push(child);
  });
  return { clientPorts, processes: run.processes, logs };
}

/** GET over https trusting `ca` (fetch takes no CA of its own). */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; json(): Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const request = requestHttps(url, { ca, timeout: 2_000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: () => Promise.resolve(JSON.parse(body) as unknown) }));
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 2 s')));
    request.on('error', reject);
    request.end();
  });
}

/** Certificates for `names` from deploy/tls/make-certs.sh, laid out as the Kubernetes Secret holds them: <name>-client.pem … and the CAs. */
function secretDirectory(names: readonly string[]): { readonly dir: string; readonly clientCa: Buffer } {
  const made = mkdtempSync(join(tmpdir(), 'warden-certs-'));
  const secret = mkdtempSync(join(tmpdir(), 'warden-secret-'));
  running.push({ processes: [], dirs: [made, secret] });
  execFileSync('bash', [join(ROOT, 'deploy/tls/make-certs.sh'), made, ...names], { stdio: 'ignore' });
  for (const name of names) for (const file of ['client.pem', 'client.key', 'peer.pem', 'peer.key']) copyFileSync(join(made, name, file), join(secret, `${name}-${file}`));
  for (const file of ['peer-ca.pem', 'client-ca.pem']) copyFileSync(join(made, file), join(secret, file));
  return { dir: secret, clientCa: readFileSync(join(made, 'client-ca.pem')) };
}

/** The members agree on a leader, all are ready, and a write on one is read on another. */
async function formsACluster(started: Started, ca?: Buffer): Promise<void> {
  const scheme = ca === undefined ? 'ws' : 'wss';
  const http = (i: number, path: string): Promise<{ status: number; json(): Promise<unknown> }> => (ca === undefined ? fetch(`http://127.0.0.1:${started.clientPorts[i]}${path}`, { signal: AbortSignal.timeout(2_000) }) : httpsGet(`https://127.0.0.1:${started.clientPorts[i]}${path}`, ca));
  const leader = await until(
    'the members agree on a leader',
    async () => {
      const seen = await Promise.all(started.clientPorts.map((_, i) => http(i, '/status').then((r) => r.json() as Promise<{ leader: string | null }>).catch(() => null)));
      const leaders = new Set(seen.map((s) => s?.leader ?? null));
      return leaders.size === 1 && !leaders.has(null) ? [...leaders][0]! : null;
    },
    30_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; logs:\n${started.logs.map((l, i) => `member ${i}: ${[...l.slice(0, 3), ...l.slice(-6)].join('\n')}`).join('\n')}`);
  });
  expect(leader).toBeTruthy();
  await until('every member ready', async () => ((await Promise.all(started.clientPorts.map((_, i) => http(i, '/readyz').then((r) => r.status).catch(() => 0)))).every((s) => s === 200) ? true : null), 30_000);
  const writer = await ProtocolClient.connect(`${scheme}://127.0.0.1:${started.clientPorts[0]}`, ca === undefined ? {} : { ca });
  expect(await writer.request('put', { path: '/deploy/check', value: b64('formed') })).toMatchObject({ ok: true });
  writer.close();
  const reader = await ProtocolClient.connect(`${scheme}://127.0.0.1:${started.clientPorts[2]}`, ca === undefined ? {} : { ca });
  const got = await reader.request('get', { path: '/deploy/check' });
  reader.close();
  expect(unb64((got['node'] as { value: string }).value)).toBe('formed');
}

describe('the deploy files start a working cluster', () => {
  it('deploy/compose.yaml (with the Dockerfile\'s defaults)', async () => {
    const specs = fromCompose();
    expect(specs).toHaveLength(3);
    await formsACluster(await start(specs));
  }, 90_000);

  it('deploy/k8s/statefulset.yaml (names and the initial cluster from the StatefulSet, TLS from the mounted Secret)', async () => {
    const specs = fromKubernetes();
    expect(specs).toHaveLength(3);
    expect(specs[0]!.args).toContain('--name=warden-0');
    expect(specs[0]!.env['WARDEN_PEER_CERT_FILE']).toBe('/etc/warden/tls/warden-0-peer.pem');
    const secret = secretDirectory(['warden-0', 'warden-1', 'warden-2']);
    await formsACluster(await start(specs, { '/etc/warden/tls': secret.dir }), secret.clientCa);
  }, 90_000);

  it('deploy/systemd/wardend@.service with n1.env, n2.env, n3.env', async () => {
    await formsACluster(await start(fromSystemd()));
  }, 90_000);

  it('the PodDisruptionBudget keeps a quorum, and the probes are /livez and /readyz', () => {
    const pdb = parseYaml(read('deploy/k8s/pdb.yaml')) as { spec: { maxUnavailable?: number; minAvailable?: number } };
    const set = parseAllDocuments(read('deploy/k8s/statefulset.yaml')).map((d) => d.toJS() as { kind: string; spec: { replicas: number; template: { spec: { containers: { readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } } }[] } } } }).find((d) => d.kind === 'StatefulSet')!;
    const quorum = Math.floor(set.spec.replicas / 2) + 1;
    expect(set.spec.replicas - (pdb.spec.maxUnavailable ?? set.spec.replicas - pdb.spec.minAvailable!)).toBeGreaterThanOrEqual(quorum);
    const container = set.spec.template.spec.containers[0]!;
    // Ready despite an alarm (clients must reach the pods to free space), alive while the loop runs.
    expect([container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path]).toEqual(['/readyz?exclude=alarm', '/livez']);
    // No service-link variables: WARDEN_SERVICE_HOST and the like would be unknown flags to wardend.
    expect((set.spec.template.spec as { enableServiceLinks?: boolean }).enableServiceLinks).toBe(false);
    expect(read('deploy/docker/Dockerfile')).toMatch(/HEALTHCHECK[\s\S]*\/readyz/);
  });
});
