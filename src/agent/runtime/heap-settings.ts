import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the agent's old generation grow past what is live before a full collection.
 * V8's own factor is 1.1–4× (the most while the heap is small), so after a burst of connection
 * opens the set-up objects that were promoted and then died stay resident: holding 10,000 idle
 * microtunnels, the agent's old generation kept 61–82 MB committed for about 30 MB live. At 20 %
 * it stays near what is live (46–50 MB; the agent's RSS 20–25 MB lower, bench/README.md "path"),
 * for a few more full collections during bursts, which run mostly concurrently.
 */
export const AGENT_HEAP_GROWING_PERCENT = 20;

/**
 * Applies the agent process's heap settings. V8 reads the growing factor at every full
 * collection, so setting it once the process runs takes effect from the next one (this flag
 * cannot be given in NODE_OPTIONS, which the SEA agent would need).
 */
export function applyAgentHeapSettings(): void {
  setFlagsFromString(`--heap-growing-percent=${AGENT_HEAP_GROWING_PERCENT}`);
}
