import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface DemoApps {
  intranet: number;
  echo: number;
  apps: number;
  partnerWiki: number;
  close(): Promise<void>;
}

const INTRANET_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo Corp intranet</title></head>
<body><h1>demo intranet</h1><p>You reached this private app through a zcc microtunnel.</p></body></html>
`;

/** The private apps behind the demo connector, on loopback ports only the connector knows. */
export async function startDemoApps(): Promise<DemoApps> {
  const intranet = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : INTRANET_PAGE);
  });
  const apps = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`demo app ${String(req.headers.host ?? '').split(':')[0]}\n`);
  });
  const partnerWiki = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner wiki</title></head><body><h1>partner wiki</h1></body></html>\n');
  });
  const echo = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const listen = (server: net.Server): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const ports = { intranet: await listen(intranet), echo: await listen(echo), apps: await listen(apps), partnerWiki: await listen(partnerWiki) };
  return {
    ...ports,
    async close() {
      for (const s of [intranet, apps, partnerWiki]) s.closeAllConnections();
      await Promise.all([intranet, echo, apps, partnerWiki].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
