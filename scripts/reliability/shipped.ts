// How the product is run on a device, read from the systemd unit it ships with
// (deploy/edge-agent.service): the node flags before the script in ExecStart and the
// Environment= assignments. The footprint and long-run scenarios spawn the agent with these,
// so their figures are those of the shipped daemon, not of a bare `node dist/agent/cli.js`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from '../../test/helpers/agent.js';

export const UNIT_FILE = path.join(root, 'deploy/edge-agent.service');

export interface ShippedRun {
  /** Node/V8 flags between the node binary and the script. */
  nodeArgs: string[];
  env: Record<string, string>;
}

/** Splits a systemd command line or assignment list: whitespace-separated, "double quotes" kept together. */
function words(s: string): string[] {
  return [...s.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

export function shippedRun(unit = readFileSync(UNIT_FILE, 'utf8')): ShippedRun {
  const lines = unit.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const exec = lines.find((l) => l.startsWith('ExecStart='));
  if (!exec) throw new Error(`${UNIT_FILE}: no ExecStart=`);
  const argv = words(exec.slice('ExecStart='.length));
  const script = argv.findIndex((a) => a.endsWith('/cli.js'));
  if (script < 1) throw new Error(`${UNIT_FILE}: ExecStart does not run dist/agent/cli.js with node: ${exec}`);
  // systemd starts the unit with a clean environment: nothing of the caller's NODE_OPTIONS
  // unless the unit sets it. (Under tap, @tapjs/processinfo adds its loader to every child's
  // NODE_OPTIONS whatever is passed here: about 20 MB more RSS in the short forms' figures.)
  const env: Record<string, string> = { NODE_OPTIONS: '' };
  for (const l of lines.filter((l) => l.startsWith('Environment='))) {
    for (const a of words(l.slice('Environment='.length))) {
      const eq = a.indexOf('=');
      if (eq > 0) env[a.slice(0, eq)] = a.slice(eq + 1);
    }
  }
  return { nodeArgs: argv.slice(1, script), env };
}
