// Time to first byte of small HTTP GETs on fresh TCP connections, run as a process of its own
// (inside a network namespace, by intercept.bench.ts): connect → send the request → first byte
// of the response, serial. Prints {"ms":[...]} on stdout. Usage: ttfb-client.ts HOST PORT N WARMUP
import net from 'node:net';

const [host = '127.0.0.1', portText = '80', countText = '300', warmupText = '100'] = process.argv.slice(2);
const port = Number(portText);
const GET = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

/** One GET: ms from connect() to the first response byte; the rest is read to the server's FIN. */
function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    let ms = -1;
    const s = net.connect({ host, port, noDelay: true, allowHalfOpen: true });
    s.once('connect', () => s.write(GET));
    s.on('data', (d: Buffer) => {
      if (ms >= 0) return;
      ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (d[0] !== 0x48) reject(new Error(`response starts with ${d.subarray(0, 8).toString('hex')}`));
    });
    s.once('error', reject);
    s.once('end', () => {
      s.destroy();
      if (ms < 0) reject(new Error('connection ended before any response byte'));
      else resolve(ms);
    });
  });
}

for (let i = 0; i < Number(warmupText); i++) await once();
const ms: number[] = [];
for (let i = 0; i < Number(countText); i++) ms.push(await once());
process.stdout.write(`${JSON.stringify({ ms })}\n`);
