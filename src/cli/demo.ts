import { startDemoServer, startDemoServices } from '../demo/services.ts';
import { loadConfigText } from '../config/load.ts';
import { ConfigError, formatIssue } from '../config/errors.ts';
import { Runtime } from '../runtime/runtime.ts';
import { handleSignals } from './index.ts';

/** The config `gatehouse demo` runs: a route table a newcomer can read in one screen. */
export function demoConfig(urls: { chat: string; ingest: string; realtime: string }, listen: string): string {
  return `# gatehouse demo: the gateway in front of three stand-in AI services
server:
  listen: ${listen}
  environment: development
admin: { listen: 127.0.0.1:0 }
upstreams:
  chat:     { targets: [ ${urls.chat} ], timeout: 120s }
  ingest:   { targets: [ ${urls.ingest} ], timeout: 300s }
  realtime: { targets: [ ${urls.realtime} ] }
defaults: { auth: public }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: chat
  - name: chat-stream
    match: { path: /v1/chat/stream, methods: [GET, POST] }
    upstream: chat
  - name: upload
    match: { path: /v1/upload, methods: [POST, PUT] }
    upstream: ingest
    limits: { maxBodySize: 1gb }
  - name: realtime
    match: { path: /ws/chat }
    upstream: realtime
    websocket: true
    rewrite: { path: /ws/echo }
  - name: slow
    match: { path: /v1/slow, methods: [GET] }
    upstream: chat
    timeout: 2s
`;
}

export async function runDemo(opts: { port: number; host: string }): Promise<void> {
  const services = await startDemoServices({ host: '127.0.0.1' });
  let gw: Runtime;
  try {
    const { config } = loadConfigText(demoConfig({ chat: services.chat.url, ingest: services.ingest.url, realtime: services.realtime.url }, `${opts.host}:${opts.port}`), 'demo.yaml');
    gw = new Runtime(config);
  } catch (e) {
    await services.close();
    if (e instanceof ConfigError) { process.stderr.write(e.issues.map(formatIssue).join('\n') + '\n'); process.exit(1); }
    throw e;
  }
  let ports: { port: number; adminPort: number | null };
  try {
    ports = await gw.listen();
  } catch (e) {
    await services.close();
    await gw.close();
    process.stderr.write(`gatehouse demo: cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}\n(try: npm start -- --port 8080)\n`);
    process.exit(1);
  }
  const base = `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${ports.port}`;
  console.log(`
Gatehouse demo is running.

  gateway   ${base}
  admin     http://127.0.0.1:${ports.adminPort}/metrics   (also /admin/routes, /healthz)
  services  chat ${services.chat.url}  ingest ${services.ingest.url}  realtime ${services.realtime.url}

Try:
  curl -s ${base}/v1/chat/completions -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hello gateway"}]}'
  curl -sN '${base}/v1/chat/stream?n=8&delay=150'
  head -c 50000000 /dev/zero | curl -s -X POST --data-binary @- ${base}/v1/upload

Ctrl-C drains in-flight requests and stops.
`);
  handleSignals(gw, () => services.close());
}

/**
 * `gatehouse demo --services`: only the demo services (chat, ingest, realtime) on ports `port`, `port+1`,
 * `port+2`, for a gateway in another process or container (deploy/compose.yaml).
 */
export async function runDemoServices(opts: { port: number; host: string }): Promise<void> {
  const names = ['chat', 'ingest', 'realtime'] as const;
  const servers = await Promise.all(names.map((name, i) => startDemoServer({ name, host: opts.host, port: opts.port + i })));
  for (const s of servers) console.log(`demo service ${s.name} on ${s.url}`);
  const stop = () => { void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
