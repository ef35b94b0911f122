/**
 * Writes docs/configuration.md from the agent config schema (src/agent/config/docs.ts).
 * Run: npx tsx scripts/gen-config-docs.ts   (test/config/docs.test.ts fails when it is stale)
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateConfigDocs } from '../src/agent/config/docs.js';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');
writeFileSync(out, generateConfigDocs());
process.stdout.write(`wrote ${out}\n`);
