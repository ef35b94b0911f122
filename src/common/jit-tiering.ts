import { setFlagsFromString } from 'node:v8';

/**
 * V8's interrupt budget for the long-running data-plane processes (agent, edge, connector, PSE):
 * how much bytecode a function runs, counted in bytes, before V8 considers optimising it.
 *
 * Why not V8's default (66 KiB): a connection's setup and teardown code (accept, microtunnel open,
 * stitch, splice, close) runs a few times per connection, so under the default a function of it
 * is optimised only after ~1,800 connections (a connection-sized function measured 1,757 calls;
 * 116 at this budget, test/runtime/jit-tiering.test.ts). An agent that opens a few connections a
 * minute would run that code in V8's interpreter for hours. Measured in `path-ttfb` and
 * `intercept-ttfb`, interleaved pairs: CPU per connection -15 to -28 % in the agent and -15 to
 * -20 % in the edge + connector, time to first byte 0.1-0.4 ms less (bench/README.md, stop 14;
 * the host's noise is of the same size). The price: about twice as many functions get
 * optimised (724 against 344 over a bench run) with more deoptimisations on the way (104 against
 * 35), a few milliseconds of background compiling in the first minutes.
 */
export const DATA_PLANE_INTERRUPT_BUDGET = 4096;

/**
 * Applies the budget to this process. V8 reads the flag whenever it resets a function's budget,
 * so setting it at start covers every function compiled or re-budgeted afterwards. (NODE_OPTIONS
 * cannot carry it: Node admits only a few V8 flags there.)
 */
export function tierUpEarly(): void {
  setFlagsFromString(`--interrupt-budget=${DATA_PLANE_INTERRUPT_BUDGET}`);
}
