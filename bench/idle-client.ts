// Idle connections through the kernel intercept, held by a process of its own inside the network
// namespace (intercept.bench.ts, row intercept-idle-10k): opens N TCP connections to HOST:PORT
// (an echo app behind a synthetic IP), each used once (a byte echoed end to end: buffers on the
// way have been touched, as on a keep-alive connection between requests), checks once all are
// open that a sample still echoes, prints {"opened","failed","echoed","firstError"} on stdout,
// then holds them until stdin closes.
// Usage: idle-client.ts HOST PORT N
import net from 'node:net';

const [host = '127.0.0.1', portText = '8099', countText = '10000'] = process.argv.slice(2);
const port = Number(portText);
const want = Number(countText);
const CONCURRENCY = 64;
const ECHO_SAMPLE = 100;

const sockets: net.Socket[] = [];
let failed = 0;
let firstError: string | undefined;
let next = 0;

function open(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function worker(): Promise<void> {
  while (next < want) {
    next++;
    try {
      const s = await open();
      if (!(await echoes(s))) throw new Error('no echo on a fresh connection');
      sockets.push(s);
    } catch (err) {
      failed++;
      firstError ??= (err as Error).message;
    }
  }
}

/** One byte out and back through the whole path, or false after 5 s. */
function echoes(s: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 5_000);
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString() === 'z');
    });
    s.write('z');
  });
}

await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const sample = Array.from({ length: Math.min(ECHO_SAMPLE, sockets.length) }, (_, i) => sockets[Math.floor((i * sockets.length) / ECHO_SAMPLE)] as net.Socket);
const echoed = (await Promise.all(sample.map(echoes))).filter(Boolean).length;
process.stdout.write(`${JSON.stringify({ opened: sockets.length, failed, echoed, ...(firstError ? { firstError } : {}) })}\n`);
process.stdin.resume();
process.stdin.once('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
