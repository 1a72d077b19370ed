// Fault injection points for the reliability and rollout tests. Inert unless the variable is
// set; documented in docs/reliability.md. Never set in production units.
//   EDGE_FAULT_CRASH_ON_LOAD=name@version   the process dies (SIGKILL) while loading that model version
//   EDGE_FAULT_HOLD_INFERENCE=/path/file     every inference waits while that file exists (requests stay in flight)
//   EDGE_FAULT_KILL_UPDATE_AT=step          the process dies (SIGKILL) after that self-update step (downloaded, unpacked, pending, switched, gate)
import { existsSync } from 'node:fs';

export function crashOnLoad(name: string, version: string, env: NodeJS.ProcessEnv = process.env): void {
  const spec = env.EDGE_FAULT_CRASH_ON_LOAD;
  if (!spec) return;
  if (spec.split(',').some((s) => s.trim() === `${name}@${version}`)) {
    process.stderr.write(`edge-agent: EDGE_FAULT_CRASH_ON_LOAD: dying while loading ${name}@${version}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}

export async function holdInference(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const file = env.EDGE_FAULT_HOLD_INFERENCE;
  if (!file) return;
  while (existsSync(file)) await new Promise((r) => setTimeout(r, 20));
}

/** EDGE_FAULT_KILL_UPDATE_AT=step: the process dies (SIGKILL) right after that step of a self-update (agent/update/apply.ts). */
export function killAtUpdateStep(step: string, env: NodeJS.ProcessEnv = process.env): void {
  if (env.EDGE_FAULT_KILL_UPDATE_AT !== step) return;
  process.stderr.write(`edge-agent: EDGE_FAULT_KILL_UPDATE_AT: dying after the update step "${step}"\n`);
  process.kill(process.pid, 'SIGKILL');
}
