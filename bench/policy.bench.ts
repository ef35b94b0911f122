// The edge's access decision, made for every microtunnel open (src/edge/broker/policy.ts:
// segment match by name and port, then the tenant's ordered rules), against a tenant of 500
// segments and one of 2, in this process: a pure function, no I/O.
//
//   policy-decide-500   decisions/s, 500 segments of two domains each (an exact name and a
//                       wildcard), opens cycling over 200 app names spread over them
//   policy-decide-2     the same with 2 segments (the bench world's), 4 names
//
// Each row runs ~0.5 s untimed first (V8 tiering, the segment index and its memo of names),
// then timed rounds of --seconds (default 1), interleaved; medians reported.
import { decide, type TenantPolicy } from '../src/edge/broker/policy.js';
import type { AppSegment } from '../src/protocol/segments.js';
import { matchesOnly, median, round, type BenchOptions, type BenchResult, type Benchmark } from './lib.js';

const ROWS = ['policy-decide-500', 'policy-decide-2'] as const;
type Row = (typeof ROWS)[number];

function tenant(n: number): { segments: AppSegment[]; names: string[] } {
  const segments = Array.from({ length: n }, (_, i): AppSegment => ({
    id: `seg-${i}`,
    name: `Segment ${i}`,
    domains: [`app${i}.corp.example.com`, `*.svc${i}.corp.example.com`],
    tcpPorts: [{ from: 443, to: 443 }],
    udpPorts: [],
    multimatch: false,
    drEnabled: false,
  }));
  const count = n >= 100 ? 200 : 2 * n;
  const names = Array.from({ length: count }, (_, k) => {
    const i = Math.floor((k * n) / count);
    return k % 2 === 0 ? `app${i}.corp.example.com` : `api.svc${i}.corp.example.com`;
  });
  return { segments, names };
}

// Rules as a tenant writes them: a few denies for groups, then the allow everyone reaches.
const POLICY: Pick<TenantPolicy, 'matchMode' | 'rules'> = {
  matchMode: 'first-match',
  rules: [
    { id: 'deny-contractors', name: 'No admin apps for contractors', action: 'deny', groups: ['contractors'], segments: ['seg-0', 'seg-1'] },
    { id: 'allow-staff', name: 'Staff', action: 'allow', groups: ['staff'] },
  ],
};

/** Decisions per second over `seconds`, cycling over the tenant's names. */
function rate(t: { segments: AppSegment[]; names: string[] }, seconds: number): number {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const started = process.hrtime.bigint();
  let n = 0;
  let allowed = 0;
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 1000; i++) {
      const d = decide(POLICY, t.segments, { fqdn: t.names[n % t.names.length] ?? '', proto: 'tcp', port: 443, user: 'ada@acme.test', groups: ['staff'] });
      if (d.allow) allowed++;
      n++;
    }
  }
  // Every name is an app the rules allow: a decision that refuses means the bench is broken.
  if (allowed !== n) throw new Error(`policy bench: ${n - allowed} of ${n} decisions refused`);
  return n / (Number(process.hrtime.bigint() - started) / 1e9);
}

export const policyBenchmark: Benchmark = {
  name: 'policy',
  description: "the edge's access decision per microtunnel open: 500 segments against 2",
  rows: ROWS,
  run(opts: BenchOptions): Promise<BenchResult[]> {
    const wanted = ROWS.filter((r) => matchesOnly(r, opts.only));
    if (wanted.length === 0) return Promise.resolve([]);
    const tenants: Record<Row, ReturnType<typeof tenant>> = { 'policy-decide-500': tenant(500), 'policy-decide-2': tenant(2) };
    const seconds = opts.seconds ?? 1;
    for (const row of ROWS) rate(tenants[row], 0.5);
    const rates: Record<Row, number[]> = { 'policy-decide-500': [], 'policy-decide-2': [] };
    for (let round_ = 1; round_ <= opts.repeat; round_++) {
      for (const row of ROWS) {
        const r = rate(tenants[row], seconds);
        rates[row].push(r);
        opts.log(`  [policy ${round_}/${opts.repeat}] ${row}: ${Math.round(r)} decisions/s (${(1e6 / r).toFixed(2)} µs each)`);
      }
    }
    const baselineOf: Record<Row, Row> = { 'policy-decide-500': 'policy-decide-2', 'policy-decide-2': 'policy-decide-500' };
    return Promise.resolve(
      wanted.map((row) => {
        const value = median(rates[row]);
        return {
          bench: row,
          metric: 'decisionsPerSec',
          value: Math.round(value),
          unit: 'decisions/s',
          better: 'higher' as const,
          baseline: baselineOf[row],
          baselineValue: Math.round(median(rates[baselineOf[row]])),
          figures: { usPerDecision: round(1e6 / value, 2), segments: tenants[row].segments.length, names: tenants[row].names.length, runs: rates[row].length },
          description: row === 'policy-decide-500' ? 'decide() with 500 segments' : 'decide() with 2 segments',
        };
      }),
    );
  },
};
