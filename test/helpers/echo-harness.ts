import { afterAll, beforeAll } from 'vitest';
import { echoApp, Harness } from './harness.js';
import { echoServer, type TestServer } from './servers.js';

/** What a suite of useEchoHarness reads in its tests, set before the first one runs. */
export interface EchoWorld {
  readonly h: Harness;
  readonly echo: TestServer;
}

/**
 * The reference cloud with one app, `echo.acme.test:7`, an echo server: started before the
 * calling suite's tests, stopped after them. Call it inside the describe block.
 */
export function useEchoHarness(): EchoWorld {
  const world = {} as { h: Harness; echo: TestServer };
  beforeAll(async () => {
    world.echo = await echoServer();
    world.h = await new Harness(echoApp(world.echo.port)).start();
  });
  afterAll(async () => {
    await world.h?.stop();
    await world.echo?.close();
  });
  return world;
}
