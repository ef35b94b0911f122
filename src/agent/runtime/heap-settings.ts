import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * How far V8 lets the agent's old generation grow past what is live before a full collection,
 * while the agent holds many connections. V8's own factor is 1.1–4× (4× at the first full
 * collection), so after a burst of connection opens the set-up objects that were promoted and
 * then died stay resident: holding 10,000 idle microtunnels, the agent's old generation kept
 * 61–95 MB committed for about 46 MB live. At 20 % it stays near what is live (46–50 MB).
 */
export const AGENT_HEAP_GROWING_PERCENT = 20;

/**
 * Open microtunnels from which the tight factor applies, and below which V8's own returns. The
 * tight factor cannot be the rule for every agent: V8 counts the ArrayBuffers in flight (every
 * TLS read of a Z-Tunnel allocates one) against the same limit, and with a few MB of headroom a
 * bulk transfer set off a full collection every 60–70 ms: 1.6–1.8× the agent CPU per MiB moved
 * (bench/README.md, "Measured again (stop 13)"). A heap of many connections is what the tight
 * factor is for; a few busy ones are better served by V8's own. The gap between the two keeps an
 * agent near one of them from flipping back and forth.
 */
export const TIGHT_FROM_CONNECTIONS = 2_000;
export const ROOMY_BELOW_CONNECTIONS = 1_000;
const CHECK_EVERY_MS = 500;

export type HeapMode = 'roomy' | 'tight';

/** The mode for `open` connections, given the current one. */
export function heapModeFor(open: number, current: HeapMode): HeapMode {
  if (open >= TIGHT_FROM_CONNECTIONS) return 'tight';
  if (open < ROOMY_BELOW_CONNECTIONS) return 'roomy';
  return current;
}

export interface HeapSettings {
  readonly mode: HeapMode;
  /** Full collections run at a switch to tight. */
  readonly collections: number;
  /** Re-reads the connection count now (the timer does it every 500 ms). */
  check(): void;
  stop(): void;
}

/**
 * Keeps the agent process's heap settings fitted to how many connections it holds. V8 reads the
 * growing factor at every full collection (it cannot be given in NODE_OPTIONS, which the SEA
 * agent would need), but its current limit was set by the last collection with the old factor,
 * up to 4× what was live then; so turning tight collects once at once, which sets the limit
 * with the new factor (10–80 ms, once per burst of connections). The timer is unref'd: it never
 * keeps the process alive.
 */
export function applyAgentHeapSettings(openConnections: () => number): HeapSettings {
  let mode: HeapMode = 'roomy';
  let collect: (() => void) | undefined;
  let collections = 0;
  const fullCollection = (): void => {
    if (!collect) {
      // Node has no API for a full collection. V8 installs its `gc` extension in contexts
      // created once --expose-gc is set; the main context stays without it.
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
    collect();
    collections++;
  };
  const check = (): void => {
    const next = heapModeFor(openConnections(), mode);
    if (next === mode) return;
    mode = next;
    setFlagsFromString(`--heap-growing-percent=${mode === 'tight' ? AGENT_HEAP_GROWING_PERCENT : 0}`);
    if (mode === 'tight') fullCollection();
  };
  const timer = setInterval(check, CHECK_EVERY_MS).unref();
  return {
    get mode() {
      return mode;
    },
    get collections() {
      return collections;
    },
    check,
    stop: () => clearInterval(timer),
  };
}
