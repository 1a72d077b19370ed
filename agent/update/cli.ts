// The self-update commands of edge-agent (docs/self-update.md):
//   edge-agent supervise --config FILE           start <update.root>/current and restart it (no systemd)
//   edge-agent update install --config FILE --file RELEASE.tar.gz [--force] [--restart-pid PID]
//   edge-agent update guard --config FILE        the boot guard (systemd ExecStartPre)
//   edge-agent update status --config FILE
//   edge-agent release pack --dir DIR --key KEY --out FILE   (on the build machine)
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Errors, describe } from '../errors.js';
import { sha256OfFile } from '../models/download.js';
import { readKeyEntries } from '../security/trusted-keys.js';
import { applyRelease, bootGuard, rollBack, runningRelease } from './apply.js';
import { currentVersion, readState } from './layout.js';
import { packRelease } from './release.js';
import { Supervisor } from './supervisor.js';

function updateConfig(file: string): Config & { update: { root: string } } {
  const config = loadConfig(file);
  if (!config.update.root) throw Errors.CONFIG_INVALID(file, ['update.root is not set: this agent is not installed as self-updating releases (docs/self-update.md)']);
  return config as Config & { update: { root: string } };
}

const print = (doc: unknown): void => void process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
const log = (msg: string, extra?: Record<string, unknown>): void =>
  void process.stderr.write(JSON.stringify({ time: Date.now(), name: 'edge-agent-supervisor', msg, ...extra }) + '\n');

export function registerUpdateCommands(program: Command, fail: (err: unknown) => never): void {
  program
    .command('supervise')
    .description('start <update.root>/current and start it again whenever it exits (what systemd does; for devices without it)')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .option('--restart-delay-ms <ms>', 'pause before a restart', '1000')
    .action(async (opts: { config: string; restartDelayMs: string }) => {
      let sup: Supervisor;
      try {
        const config = updateConfig(opts.config);
        sup = new Supervisor({
          root: config.update.root, dataDir: config.dataDir, maxStarts: config.update.maxStarts,
          args: ['run', '--config', opts.config], restartDelayMs: Number(opts.restartDelayMs), stopTimeoutMs: config.shutdownTimeoutMs + 1000, log,
        });
      } catch (err) {
        fail(err);
      }
      const stop = (): void => void sup.stop();
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await sup.run().catch(fail);
      process.exit(0);
    });

  const update = program.command('update').description('self-update: install a release, the boot guard, status');
  update
    .command('install')
    .description('verify a signed release file and install it beside the others, then switch current to it')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .requiredOption('-f, --file <release>', 'release artifact (.tar.gz made by "edge-agent release pack")')
    .option('--sha256 <hex>', 'the sha256 the file must have (default: its own)')
    .option('--force', 'install even when it is not newer than the running release')
    .option('--restart-pid <pid>', 'after the switch, send SIGTERM to this process (the running agent) so that it is started again')
    .action(async (opts: { config: string; file: string; sha256?: string; force?: boolean; restartPid?: string }) => {
      try {
        const config = updateConfig(opts.config);
        const keys = config.update.trustedKeys.length ? config.update.trustedKeys : config.security.trustedKeys;
        const current = currentVersion(config.update.root);
        const sha256 = opts.sha256 ?? (await sha256OfFile(opts.file));
        const version = await releaseVersionOf(opts.file);
        const info = await applyRelease({ root: config.update.root, dataDir: config.dataDir }, opts.file, { version, sha256 }, {
          trustedKeysPem: readKeyEntries(keys, 'trusted keys'), arch: process.arch, currentVersion: current, force: Boolean(opts.force),
        });
        if (opts.restartPid) process.kill(Number(opts.restartPid), 'SIGTERM');
        print({ installed: info.version, from: current ?? null, current: currentVersion(config.update.root) });
      } catch (err) {
        fail(err);
      }
    });
  update
    .command('guard')
    .description('the boot guard: count the start of a pending release, roll back a crash loop (systemd ExecStartPre)')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .action(async (opts: { config: string }) => {
      try {
        const config = updateConfig(opts.config);
        const g = await bootGuard({ root: config.update.root, dataDir: config.dataDir }, config.update.maxStarts);
        print({ action: g.action, ...g.state });
      } catch (err) {
        fail(err);
      }
    });
  update
    .command('rollback')
    .description('switch current back to the release the pending update came from')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .action(async (opts: { config: string }) => {
      try {
        const config = updateConfig(opts.config);
        print(await rollBack({ root: config.update.root, dataDir: config.dataDir }, 'rolled back by hand (edge-agent update rollback)'));
      } catch (err) {
        fail(err);
      }
    });
  update
    .command('status')
    .description('the current release, the pending update and how the last one ended')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .action((opts: { config: string }) => {
      try {
        const config = updateConfig(opts.config);
        print({ current: currentVersion(config.update.root) ?? null, running: runningRelease()?.version ?? null, ...readState(config.dataDir) });
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('release')
    .description('agent releases (on the build machine)')
    .command('pack')
    .description('write the signed manifest of a release folder (it holds RELEASE.json) and pack it into a release artifact')
    .requiredOption('--dir <dir>', 'the release folder')
    .requiredOption('--key <file>', 'ed25519 private key (PEM) of the release signer')
    .requiredOption('-o, --out <file>', 'the artifact to write (.tar.gz)')
    .action(async (opts: { dir: string; key: string; out: string }) => {
      try {
        const info = await packRelease(opts.dir, readFileSync(opts.key, 'utf8'), opts.out);
        print({ ...info, file: opts.out, sha256: await sha256OfFile(opts.out) });
      } catch (err) {
        fail(err);
      }
    });
}

/** The version a release artifact's RELEASE.json names (read before anything is trusted; verified after unpacking). */
async function releaseVersionOf(file: string): Promise<string> {
  const tar = await import('tar');
  let text = '';
  await tar.t({
    file,
    onReadEntry: (e) => {
      if (e.path.replace(/^\.\//, '') === 'RELEASE.json' && e.size < 64 * 1024) e.on('data', (d: Buffer) => { text += d.toString('utf8'); });
      else e.resume();
    },
  });
  try {
    return String((JSON.parse(text) as { version?: unknown }).version);
  } catch (err) {
    throw Errors.BAD_REQUEST(`${file} holds no readable RELEASE.json (${describe(err)}): not an agent release`);
  }
}
