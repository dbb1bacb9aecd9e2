// The deployment files keep their promises: the Kubernetes base renders (`kubectl kustomize`, or the files parsed
// one by one when kubectl is absent), its probes, ports and grace periods agree with the config it ships, nothing
// runs as root, the embedded config passes `gatehouse validate`; the compose stack's config validates too, and
// the Dockerfile keeps its invariants. (No container runtime runs here: docs/deploy.md says what was exercised.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { parseAllDocuments, parse } from 'yaml';
import { loadConfigText } from '../../src/config/load.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');
const BIN = join(ROOT, 'bin', 'gatehouse.mjs');
const run = promisify(execFile);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are read by key path
type Obj = Record<string, any>;

function hasKubectl(): boolean {
  try { execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** The rendered base: `kubectl kustomize`, or (without kubectl) the resource files and a ConfigMap built from the config file. */
function render(): Obj[] {
  if (hasKubectl()) return parseAllDocuments(execFileSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' })).map((d) => d.toJS() as Obj);
  const k = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
  const docs = (k.resources as string[]).flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS() as Obj));
  for (const g of k.configMapGenerator as Obj[]) docs.push({ kind: 'ConfigMap', metadata: { name: g.name }, data: Object.fromEntries((g.files as string[]).map((f) => [f, readFileSync(join(K8S, f), 'utf8')])) });
  return docs;
}

/** Runs `gatehouse validate` on `yaml` with `env`, as an operator would. */
async function validate(yaml: string, env: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-deploy-'));
  try {
    writeFileSync(join(dir, 'gatehouse.yaml'), yaml);
    const { stdout } = await run(process.execPath, [BIN, 'validate', join(dir, 'gatehouse.yaml')], { env: { PATH: process.env.PATH, ...env } });
    return stdout;
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('the Kubernetes base: probes and ports match the config, grace periods are ordered, nothing runs as root, the config validates', async () => {
  const docs = render();
  const of = (kind: string) => { const d = docs.filter((x) => x.kind === kind); assert.equal(d.length, 1, `one ${kind}`); return d[0]; };
  const deploy = of('Deployment');
  const svc = of('Service');
  const cm = of('ConfigMap');
  const pdb = of('PodDisruptionBudget');
  const hpa = of('HorizontalPodAutoscaler');

  const pod = deploy.spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  const args = c.args as string[];
  const configPath = args[args.indexOf('--config') + 1];
  const mount = (c.volumeMounts as Obj[]).find((m) => configPath.startsWith(m.mountPath + '/'));
  assert.ok(mount, `the --config file ${configPath} is on a mounted volume`);
  assert.equal(mount.subPath, undefined, 'a directory mount (subPath mounts never see ConfigMap updates)');
  const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
  assert.equal(volume.configMap.name, cm.metadata.name);
  const fileName = configPath.slice(mount.mountPath.length + 1);
  const yaml = cm.data[fileName] as string;
  assert.ok(yaml, `the ConfigMap holds ${fileName}`);

  // The env the pod gets: plain values as they are, Secret references with stand-in values of a realistic shape.
  const env: Record<string, string> = {};
  for (const e of c.env as Obj[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = e.name.includes('URL') ? 'redis://redis.example.internal:6379' : randomBytes(32).toString('hex');
  }
  for (const m of yaml.matchAll(/\$\{([A-Z0-9_]+)\}/g)) assert.ok(m[1] in env, `\${${m[1]}} (no default) is given to the pod`);
  assert.ok((c.env as Obj[]).some((e) => e.valueFrom?.secretKeyRef), 'secrets come from a Secret');
  assert.ok(!/secret:\s*["']?[A-Za-z0-9]{16,}/.test(yaml), 'no secret value in the ConfigMap');
  const out = await validate(yaml, env);
  assert.match(out, /ok \(\d+ routes, \d+ upstreams\)/);
  const config = loadConfigText(yaml, 'k8s.yaml', { env }).config;

  // ports: container port = the config's listen port; probes and the Service use that named port
  const port = (c.ports as Obj[]).find((p) => p.name === 'http')!;
  assert.equal(port.containerPort, config.server.listen.port);
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/livez', 'liveness reflects the process only');
  for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe]) assert.equal(p.httpGet.port, 'http');
  assert.equal(svc.spec.ports[0].targetPort, 'http');
  assert.deepEqual(svc.spec.selector, deploy.spec.selector.matchLabels);
  assert.deepEqual(pdb.spec.selector.matchLabels, deploy.spec.selector.matchLabels);
  assert.deepEqual(deploy.spec.template.metadata.labels, { ...deploy.spec.template.metadata.labels, ...deploy.spec.selector.matchLabels });
  assert.equal(hpa.spec.scaleTargetRef.name, deploy.metadata.name);
  assert.ok(hpa.spec.minReplicas >= 2 && pdb.spec.maxUnavailable === 1);

  // grace: preStop wait + drain grace < terminationGracePeriodSeconds
  const preStop = c.lifecycle.preStop.exec.command as string[];
  assert.equal(preStop[0], 'sleep');
  const preStopSeconds = Number(preStop[1]);
  const graceSeconds = config.server.shutdownGrace / 1000;
  assert.ok(preStopSeconds + graceSeconds < pod.terminationGracePeriodSeconds, `preStop ${preStopSeconds}s + shutdownGrace ${graceSeconds}s < terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds}s`);
  assert.ok(preStopSeconds < c.readinessProbe.periodSeconds * 2 + 5);

  // no root, read-only root filesystem, resources requested
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.securityContext.runAsUser ?? pod.securityContext.runAsUser, 1000);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
  // the admin listener stays on loopback inside the pod (probes use the main listener's built-ins)
  assert.equal(config.admin.listen.host, '127.0.0.1');
});

test('the compose stack: its gateway config validates, the gateway runs read-only and non-root from the image the Dockerfile builds', async () => {
  const compose = parse(readFileSync(join(ROOT, 'deploy', 'compose.yaml'), 'utf8')) as Obj;
  const gw = compose.services.gateway;
  assert.equal(gw.read_only, true);
  assert.deepEqual(gw.cap_drop, ['ALL']);
  assert.ok(compose.services.redis && compose.services.demo);
  const volume = (gw.volumes as string[])[0];
  const [hostPath, containerPath] = volume.split(':');
  assert.equal(containerPath, gw.command[gw.command.indexOf('--config') + 1]);
  const yaml = readFileSync(join(ROOT, 'deploy', hostPath), 'utf8');
  assert.match(await validate(yaml, gw.environment as Record<string, string>), /ok \(4 routes, 3 upstreams\)/);
  const config = loadConfigText(yaml, 'compose.yaml', { env: gw.environment }).config;
  assert.equal(`${config.server.listen.port}:${config.server.listen.port}`, gw.ports[0]);
  // the demo services answer on the ports the config points at
  assert.deepEqual(compose.services.demo.command.slice(0, 2), ['demo', '--services']);
  const base = Number(compose.services.demo.command[compose.services.demo.command.indexOf('--port') + 1]);
  assert.deepEqual(Object.values(config.upstreams).map((u) => new URL(u.targets[0].url).port), [base, base + 1, base + 2].map(String));

  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.ok(dockerfile.match(/^FROM /gm)!.length >= 3, 'multi-stage');
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER 1000:1000$/m, 'a numeric non-root user (runAsNonRoot can verify it)');
  assert.match(dockerfile, /^HEALTHCHECK .*\n?.*readyz|GATEHOUSE_HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:8000\/readyz/m);
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
  assert.match(dockerfile, /COPY --from=build \/app\/dist \.\/dist/);
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['node_modules', 'dist', 'bench', 'test', '.git']) assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
  // everything the Dockerfile copies exists
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const f of m[1].split(' ')) assert.ok(readdirSync(ROOT).includes(f.split('/')[0]), `COPY ${f}`);
});

test('gatehouse demo --services answers on three consecutive ports (the compose demo container) and stops on SIGTERM', async (t) => {
  const { spawn } = await import('node:child_process');
  const { eventually } = await import('../helpers.ts');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const p = spawn(process.execPath, [BIN, 'demo', '--services', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => { p.kill('SIGKILL'); });
    let out = '';
    p.stdout!.on('data', (c) => { out += c; });
    await eventually(() => out.split('\n').filter((l) => l.startsWith('demo service')).length === 3 || p.exitCode !== null, 15_000);
    if (p.exitCode !== null) continue; // one of the three ports was taken: try others
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${port + i}/health`);
      assert.equal(r.status, 200);
      await r.text();
    }
    p.kill('SIGTERM');
    assert.equal(await new Promise((r) => p.once('exit', r)), 0);
    return;
  }
  assert.fail('no three consecutive free ports found');
});
