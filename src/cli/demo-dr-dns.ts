import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as dns } from 'node:dns';
import { existsSync } from 'node:fs';
import net from 'node:net';
import packet from 'dns-packet';

/**
 * The DR domain on loopback, for the demo and the DR tests: a real dnsmasq when installed (what
 * a customer's DNS would be), else a minimal built-in UDP server. Records change by restarting
 * dnsmasq, since it never re-reads `--txt-record` options.
 */
export interface DrZone {
  domain: string;
  /** TXT records, each as its character-strings (≤ 255 bytes each). */
  txt: string[][];
  /** A records: the private service edges. */
  a: string[];
}

export interface RunningDrDns {
  kind: 'dnsmasq' | 'builtin';
  /** "127.0.0.1:port", as resolvers are configured. */
  address: string;
  publish(zone: DrZone): Promise<void>;
  close(): Promise<void>;
}

const DNSMASQ_PATHS = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/usr/local/sbin/dnsmasq'];

export function findDnsmasq(): string | undefined {
  return DNSMASQ_PATHS.find((p) => existsSync(p));
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq takes both). */
export async function freeDnsPort(): Promise<number> {
  for (;;) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpFree) return port;
  }
}

function dnsmasqArgs(zone: DrZone, port: number): string[] {
  // On its command line dnsmasq takes text literally (quotes would be kept), and a comma starts
  // the next string: DR records contain none, and anything else is refused rather than mangled.
  const plain = (s: string): string => {
    if (s.includes(',')) throw new Error(`dnsmasq --txt-record cannot carry a comma: ${JSON.stringify(s)}`);
    return s;
  };
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--pid-file=',
    '--log-facility=-',
    // Authoritative for the DR domain: no record means NXDOMAIN/NODATA, never a forward.
    `--local=/${zone.domain}/`,
    ...zone.txt.map((strings) => `--txt-record=${zone.domain},${strings.map(plain).join(',')}`),
    ...zone.a.map((ip) => `--host-record=${zone.domain},${ip}`),
  ];
}

/** Resolves once the server on `address` answers queries (polled, with a deadline). */
async function answering(address: string, domain: string, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const r = new dns.Resolver({ timeout: 200, tries: 1 });
  r.setServers([address]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const gone = exited();
    if (gone) throw new Error(gone);
    const code = await r.resolveTxt(domain).then(() => 'ok', (e: NodeJS.ErrnoException) => e.code ?? 'error');
    if (code !== 'ECONNREFUSED' && code !== 'ETIMEOUT') return;
    if (Date.now() > deadline) throw new Error(`DNS server on ${address} not answering after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export async function startDnsmasq(zone: DrZone, opts: { binary?: string; port?: number } = {}): Promise<RunningDrDns> {
  const binary = opts.binary ?? findDnsmasq();
  if (!binary) throw new Error('dnsmasq not found (Debian: apt-get install dnsmasq-base)');
  const port = opts.port ?? (await freeDnsPort());
  const address = `127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async (z: DrZone): Promise<void> => {
    const c = spawn(binary, dnsmasqArgs(z, port), { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let stderr = '';
    let exit: string | undefined;
    c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    c.once('exit', (code, sig) => (exit = `dnsmasq exited (${code ?? sig}): ${stderr.trim()}`));
    c.once('error', (err) => (exit = `dnsmasq: ${err.message}`));
    await answering(address, z.domain, 5_000, () => exit);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await exited;
  };
  await launch(zone);
  return {
    kind: 'dnsmasq',
    address,
    async publish(z) {
      await kill();
      await launch(z);
    },
    close: kill,
  };
}

/** The fallback: answers TXT and A for the zone's name, NXDOMAIN-free NODATA for the rest. */
export async function startBuiltinDrDns(zone: DrZone): Promise<RunningDrDns> {
  let current = zone;
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    let q: packet.DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    const ours = question.name.toLowerCase() === current.domain.toLowerCase();
    const answers: packet.Answer[] =
      !ours ? [] : question.type === 'TXT' ? current.txt.map((data) => ({ type: 'TXT', name: question.name, ttl: 0, data })) : question.type === 'A' ? current.a.map((data) => ({ type: 'A', name: question.name, ttl: 0, data })) : [];
    const nx = !ours || (current.txt.length === 0 && current.a.length === 0);
    // rcode 3 = NXDOMAIN; flags: QR + AA + rcode.
    socket.send(packet.encode({ type: 'response', id: q.id, flags: packet.AUTHORITATIVE_ANSWER | (nx ? 3 : 0), questions: [question], answers }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return {
    kind: 'builtin',
    address: `127.0.0.1:${socket.address().port}`,
    async publish(z) {
      current = z;
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/** dnsmasq if installed, else the built-in server. */
export async function startDrDns(zone: DrZone): Promise<RunningDrDns> {
  return findDnsmasq() ? startDnsmasq(zone) : startBuiltinDrDns(zone);
}
