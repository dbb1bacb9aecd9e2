// CPU per dashboard snapshot (GET /admin/events): 100 routes, 10 upstreams of 2 targets, after traffic.
//   node --import tsx bench/dashboard-snapshot.ts
import { startDemoServer } from '../src/demo/services.ts';
import { startGateway, call } from '../test/helpers.ts';
import { DashboardEvents } from '../src/admin/events.ts';
const svc = await startDemoServer();
const routes = Array.from({ length: 100 }, (_, i) => `  - { name: r${i}, match: { path: /r${i} }, upstream: u${i % 10}, auth: public }`).join('\n');
const ups = Array.from({ length: 10 }, (_, i) => `  u${i}: { targets: [ ${svc.url}, ${svc.url}/b ] }`).join('\n');
const g = await startGateway(`upstreams:\n${ups}\nroutes:\n${routes}\n`);
for (let i = 0; i < 100; i++) await call(`${g.url}/r${i}`);
const ev = new DashboardEvents(g.gw);
await ev.snapshot();
const N = 200;
const cpu0 = process.cpuUsage(); const t0 = performance.now();
let bytes = 0;
for (let i = 0; i < N; i++) bytes = JSON.stringify(await ev.snapshot()).length;
const cpu = process.cpuUsage(cpu0); const t = performance.now() - t0;
console.log(`100 routes, 10 upstreams x2 targets: ${(t / N).toFixed(2)} ms wall, ${((cpu.user + cpu.system) / N / 1000).toFixed(2)} ms CPU per snapshot (incl. JSON), ${bytes} bytes`);
await g.close(); await svc.close();
