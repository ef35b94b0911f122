// Kernel intercept benchmark: curl bulk downloads from an HTTP app through the Linux kernel
// intercept (nft TPROXY → the agent's one IP_TRANSPARENT listener → microtunnel → edge →
// connector → app), against curl straight to the same app server, in the same run and the same
// network namespace. Needs root, `ip netns`, nft and curl; skipped (with the reason) otherwise.
//
// Layout inside the namespace (test/fixtures/kernel-agent.ts with `split`): the agent (DNS,
// SOCKS5, kernel intercept) in one Node process; the app server, reference cloud and connector in
// another; curl in a third. On 2 cores the cloud process, which carries three TLS endpoints and
// the app, is the bottleneck: absolute figures are pessimistic; the SOCKS5 row uses the very same
// tunnel, so kernel vs SOCKS5 isolates what the kernel intercept itself costs.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOCKS_PORT } from '../test/fixtures/kernel-apps.js';
import { AgentFixture, Netns, netnsUnavailable } from '../test/intercept-kernel/netns.js';
import { matchesOnly, median, round, type BenchOptions, type BenchResult, type Benchmark } from './lib.js';

const ROWS = ['intercept-kernel', 'intercept-socks5', 'intercept-direct'] as const;
type Row = (typeof ROWS)[number];
const BASELINE: Record<Row, Row> = { 'intercept-kernel': 'intercept-direct', 'intercept-socks5': 'intercept-direct', 'intercept-direct': 'intercept-kernel' };
const DESCRIPTION: Record<Row, string> = {
  'intercept-kernel': 'curl http://<synthetic IP>:8000/bytes/N through TPROXY, agent, edge and connector (mTLS 1.3, HTTP/2)',
  'intercept-socks5': 'curl --socks5-hostname to the agent, same microtunnel path (the pre-existing front end)',
  'intercept-direct': 'curl http://127.0.0.1:8000/bytes/N straight to the same app server',
};
const WARMUP_BYTES = 64 << 20;

/** One curl download in the namespace; MiB/s over curl's whole transfer (connect included). */
async function download(ns: Netns, host: string, bytes: number): Promise<number> {
  const via = host === 'socks5' ? ['--socks5-hostname', `127.0.0.1:${SOCKS_PORT}`] : [];
  const url = `http://${host === 'socks5' ? 'app.kern.test' : host}:8000/bytes/${bytes}`;
  const r = await ns.run('curl', ['-sS', ...via, '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { timeoutMs: 600_000 });
  const [size, seconds] = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || size !== bytes || !seconds) throw new Error(`curl ${host}: exit ${r.code}, ${r.stdout.trim()} ${r.stderr.trim()}`);
  return bytes / (1 << 20) / seconds;
}

export const interceptBenchmark: Benchmark = {
  name: 'intercept',
  description: 'Linux kernel intercept (TPROXY) + microtunnel vs direct TCP, curl bulk download in a network namespace',
  rows: ROWS,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const wanted = ROWS.filter((r) => matchesOnly(r, opts.only));
    if (wanted.length === 0) return [];
    const unavailable = await netnsUnavailable();
    if (unavailable) {
      opts.log(`  [intercept] skipped: ${unavailable}`);
      return [];
    }
    const ns = await Netns.create();
    const stateDir = await mkdtemp(join(tmpdir(), 'zcc-bench-intercept-'));
    let fixture: AgentFixture | undefined;
    try {
      const started = await AgentFixture.start(ns, { stateDir, split: true });
      fixture = started.fixture;
      const mode = (started.ready.info as { mode: string }).mode;
      const ip = (await ns.run('dig', ['@127.0.0.1', '+short', 'app.kern.test'])).stdout.trim();
      const hosts: Record<Row, string> = { 'intercept-kernel': ip, 'intercept-socks5': 'socks5', 'intercept-direct': '127.0.0.1' };
      for (const row of ROWS) await download(ns, hosts[row], Math.min(WARMUP_BYTES, opts.bytes));
      const rates: Record<Row, number[]> = { 'intercept-kernel': [], 'intercept-socks5': [], 'intercept-direct': [] };
      let maxLoad = 0;
      for (let round = 1; round <= opts.repeat; round++) {
        for (const row of ROWS) {
          maxLoad = Math.max(maxLoad, loadavg()[0] ?? 0);
          const v = await download(ns, hosts[row], opts.bytes).catch(async (err: Error) => {
            // Say why: the agent's own account of the failed transfer.
            const logs = await fixture?.request({ type: 'logs', minLevel: 40 }, 'logs').catch(() => undefined);
            const lines = (logs?.lines as unknown[] | undefined)?.slice(-5).map((l) => JSON.stringify(l)) ?? [];
            throw new Error([err.message, ...lines].join('\n'));
          });
          rates[row].push(v);
          opts.log(`  [intercept ${round}/${opts.repeat}] ${row}: ${v.toFixed(0)} MiB/s`);
        }
      }
      return wanted.map((row): BenchResult => {
        const base = BASELINE[row];
        const own = rates[row];
        return {
          bench: row,
          metric: 'mibPerSec',
          value: round(median(own), 1),
          unit: 'MiB/s',
          better: 'higher',
          baseline: base,
          baselineValue: round(median(rates[base]), 1),
          figures: {
            minMibPerSec: round(Math.min(...own), 1),
            maxMibPerSec: round(Math.max(...own), 1),
            runs: own.length,
            mib: round(opts.bytes / (1 << 20), 1),
            streams: 1,
            pairedRatio: round(median(own.map((v, i) => v / (rates[base][i] ?? Number.NaN))), 3),
            loadAvg1mMax: round(maxLoad, 2),
            mode,
            ...(row === 'intercept-kernel' ? { vsSocks5: round(median(own.map((v, i) => v / (rates['intercept-socks5'][i] ?? Number.NaN))), 3) } : {}),
            processes: 'curl | agent | app + edge + connector',
          },
          description: DESCRIPTION[row],
        };
      });
    } finally {
      await fixture?.stop();
      await ns.destroy();
      await rm(stateDir, { recursive: true, force: true });
    }
  },
};
