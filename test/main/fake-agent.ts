/**
 * A fake agent local API on a Unix socket (HTTP, newline-delimited JSON watch stream), for
 * testing the main process's client end to end over a real socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  LOCALAPI_BASE_PATH,
  LOCALAPI_WATCH_PATH,
  type AgentStatus,
  type WatchEvent,
} from '../../src/common/localapi-schema.js';

export interface FakeAgentReply {
  status: number;
  body: unknown;
}

export interface FakeAgent {
  socketPath: string;
  status: AgentStatus;
  /** Requests received, in order: name and parsed body. */
  requests: { name: string; body: unknown }[];
  /** Override the answer for a request name. */
  reply(name: string, fn: (body: unknown) => FakeAgentReply): void;
  /** Push a `changed` event (or any raw line) to every open watch stream. */
  push(status: AgentStatus): void;
  pushRaw(line: string): void;
  /** Ends every watch stream (the client should reconnect). */
  dropWatchers(): void;
  watchConnections(): number;
  close(): Promise<void>;
}

export async function startFakeAgent(initial: AgentStatus): Promise<FakeAgent> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zcc-agent-'));
  const socketPath = path.join(dir, 'localapi.sock');
  const watchers = new Set<http.ServerResponse>();
  const replies = new Map<string, (body: unknown) => FakeAgentReply>();
  let connections = 0;

  const agent: FakeAgent = {
    socketPath,
    status: initial,
    requests: [],
    reply: (name, fn) => void replies.set(name, fn),
    push(status) {
      agent.status = status;
      const ev: WatchEvent = { type: 'changed', status };
      agent.pushRaw(JSON.stringify(ev));
    },
    pushRaw(line) {
      for (const w of watchers) w.write(`${line}\n`);
    },
    dropWatchers() {
      for (const w of watchers) w.end();
      watchers.clear();
    },
    watchConnections: () => connections,
    async close() {
      agent.dropWatchers();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === LOCALAPI_WATCH_PATH) {
      connections++;
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const ev: WatchEvent = { type: 'snapshot', status: agent.status };
      res.write(`${JSON.stringify(ev)}\n`);
      watchers.add(res);
      res.on('close', () => watchers.delete(res));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const name = (req.url ?? '').slice(LOCALAPI_BASE_PATH.length + 1);
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      agent.requests.push({ name, body });
      const custom = replies.get(name);
      const answer: FakeAgentReply = custom
        ? custom(body)
        : name === 'status'
          ? { status: 200, body: agent.status }
          : name === 'settings'
            ? { status: 200, body: { settings: [] } }
            : { status: 404, body: { error: `no such request: ${name}`, code: 'not_found' } };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return agent;
}
