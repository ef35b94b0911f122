// `zcc-bench` entry: a small registry of benchmarks and the CLI around it.
//
//   npm run bench                         readable table
//   npm run bench -- --json               one JSON object per line per row
//   npm run bench -- --only mux-http2     one row (its baseline still runs in the same run)
//   npm run bench -- --only 'mux-*' --size 512 --repeat 5
//
// To add a benchmark: create bench/<name>.bench.ts exporting a `Benchmark` (see lib.ts) and
// append it to REGISTRY below. Each row must carry a baseline measured in the same run.
import { ratioOf, toJsonRecord, type BenchOptions, type BenchResult, type Benchmark } from './lib.js';
import { dnsBenchmark } from './dns.bench.js';
import { hopsBenchmark } from './hops.bench.js';
import { interceptBenchmark } from './intercept.bench.js';
import { muxBenchmark } from './mux.bench.js';
import { pathBenchmark } from './path.bench.js';
import { policyBenchmark } from './policy.bench.js';

export const REGISTRY: readonly Benchmark[] = [muxBenchmark, interceptBenchmark, dnsBenchmark, pathBenchmark, hopsBenchmark, policyBenchmark];

interface Cli {
  json: boolean;
  list: boolean;
  only: string[];
  sizeMiB: number;
  repeat: number;
  writeKiB: number;
  seconds?: number;
  conns?: number;
}

const USAGE = `usage: zcc-bench [--json] [--only NAME[,NAME...]] [--size MiB] [--repeat N] [--write-kib KiB] [--seconds S] [--conns N] [--list]
  --only    benchmark name (e.g. mux) or row name(s); a trailing * matches a prefix (mux-*)
  --size    MiB moved per throughput measurement (default 256)
  --repeat  measured rounds, cases interleaved, medians reported (default 3)
  --seconds length of each timed phase of rate measurements (dns; default 1.5)
  --conns   idle tunneled connections held by path-idle-10k and intercept-idle-10k (default 10000)
  --json    one JSON object per line per row, with its baseline and ratio`;

function parseArgs(argv: readonly string[]): Cli {
  const cli: Cli = { json: false, list: false, only: [], sizeMiB: 256, repeat: 3, writeKiB: 64 };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--json':
        cli.json = true;
        break;
      case '--list':
        cli.list = true;
        break;
      case '--only':
        cli.only.push(...(value() ?? '').split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case '--size':
        cli.sizeMiB = num('--size', value());
        break;
      case '--repeat':
        cli.repeat = Math.round(num('--repeat', value()));
        break;
      case '--write-kib':
        cli.writeKiB = num('--write-kib', value());
        break;
      case '--seconds':
        cli.seconds = num('--seconds', value());
        break;
      case '--conns':
        cli.conns = Math.round(num('--conns', value()));
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  return cli;
}

function fmt(x: number): string {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function printTable(rows: readonly BenchResult[]): void {
  const head = ['bench', 'figure', 'baseline (same run)', 'ratio', 'notes'];
  const body = rows.map((r) => {
    const extra = Object.entries(r.figures)
      .filter(([k]) => k !== 'processes')
      .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
      .join(' ');
    return [
      r.bench,
      `${fmt(r.value)} ${r.unit}`,
      `${r.baseline} ${fmt(r.baselineValue)} ${r.unit}`,
      `${ratioOf(r).toFixed(2)}${r.better === 'lower' ? ' (lower is better)' : ''}`,
      extra,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const b of body) console.log(line(b));
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  if (cli.list) {
    for (const b of REGISTRY) console.log(`${b.name}: ${b.description}\n  ${b.rows.join('\n  ')}`);
    return;
  }
  const log = (s: string): void => {
    process.stderr.write(`${s}\n`);
  };
  const all: BenchResult[] = [];
  const t0 = Date.now();
  for (const b of REGISTRY) {
    // `--only mux` selects a whole benchmark; anything else is passed down as a row filter.
    const whole = cli.only.length === 0 || cli.only.includes(b.name);
    const rowFilter = whole ? [] : cli.only;
    if (!whole && !b.rows.some((r) => rowFilter.some((o) => (o.endsWith('*') ? r.startsWith(o.slice(0, -1)) : r === o)))) continue;
    const opts: BenchOptions = {
      bytes: Math.round(cli.sizeMiB * (1 << 20)),
      writeSize: Math.round(cli.writeKiB * 1024),
      repeat: cli.repeat,
      only: rowFilter,
      log,
      ...(cli.seconds !== undefined ? { seconds: cli.seconds } : {}),
      ...(cli.conns !== undefined ? { conns: cli.conns } : {}),
    };
    log(`# ${b.name}: ${b.description} (size ${cli.sizeMiB} MiB, ${cli.writeKiB} KiB writes, ${cli.repeat} rounds)`);
    const rows = await b.run(opts);
    all.push(...rows);
    if (cli.json) for (const r of rows) console.log(JSON.stringify(toJsonRecord(r)));
  }
  if (all.length === 0) throw new Error(`nothing matched --only ${cli.only.join(',')}; try --list`);
  if (!cli.json) printTable(all);
  log(`# done in ${((Date.now() - t0) / 1000).toFixed(1)} s on Node ${process.version}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
