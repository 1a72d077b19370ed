#!/usr/bin/env node
// edge-agent: the on-device daemon and its small helpers.
import { Command, InvalidArgumentError } from 'commander';
import { Agent } from './agent.js';
import { loadConfig } from './config/load.js';
import { preflight } from './config/preflight.js';
import { EdgeError, Errors, describe } from './errors.js';
import { AGENT_VERSION } from './version.js';
import { inferOnce } from './api/infer-client.js';
import { registerUpdateCommands } from './update/cli.js';

/** sysexits(3) EX_CONFIG: the unit file tells systemd not to restart on it. */
export const EXIT_CONFIG = 78;

function fail(err: unknown): never {
  const code = err instanceof EdgeError ? err.code : Errors.FATAL.code;
  process.stderr.write(`edge-agent: ${describe(err)}\n`);
  // An insecure key file is an installation problem too: restarting will not fix it.
  process.exit([Errors.CONFIG_UNREADABLE.code, Errors.CONFIG_INVALID.code, Errors.KEY_FILE_INSECURE.code].includes(code) ? EXIT_CONFIG : 1);
}

export async function runDaemon(configFile: string): Promise<void> {
  let config;
  try {
    config = loadConfig(configFile);
  } catch (err) {
    fail(err);
  }
  const agent = new Agent(config);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      agent.log.warn({ signal: sig }, 'second signal: exiting at once');
      process.exit(130);
    }
    agent.log.info({ signal: sig }, 'shutting down');
    const timer = setTimeout(() => {
      agent.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    agent.stop().then(
      () => process.exit(0),
      (err) => {
        agent.log.error({ err: describe(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await agent.start();
  } catch (err) {
    agent.log.fatal({ err: describe(err) }, 'start failed');
    await agent.stop().catch(() => undefined);
    fail(err);
  }
  if (process.stdout.isTTY || process.env.EDGE_AGENT_PRINT_URL) {
    process.stderr.write(`\nedge-agent is running. Open ${agent.url}/ (health: ${agent.url}/healthz)\n\n`);
  }
}

export function buildCli(): Command {
  const program = new Command('edge-agent')
    .description('Runs compressed ML models on this device and keeps it in sync with its fleet.')
    .version(AGENT_VERSION)
    .showHelpAfterError();

  program
    .command('run')
    .description('run the daemon (under systemd: Type=notify)')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .action(async (opts: { config: string }) => runDaemon(opts.config));

  program
    .command('check-config')
    .description('validate a config file and the files it names (keys, certificates, packages); print it with defaults filled in')
    .requiredOption('-c, --config <file>', 'config file (JSON)')
    .action((opts: { config: string }) => {
      try {
        const config = loadConfig(opts.config);
        // Everything run checks before it starts, not only the schema.
        const problems = preflight(config);
        if (problems.length) throw Errors.CONFIG_INVALID(opts.config, problems);
        process.stdout.write(JSON.stringify(config, null, 2) + '\n');
      } catch (err) {
        fail(err);
      }
    });
  program
    .command('infer')
    .description('run one inference on a running agent: the input is JSON or a NumPy .npy file')
    .requiredOption('-m, --model <name>', 'model name as served')
    .requiredOption('-i, --input <file>', 'input: .json (request body or one tensor) or .npy')
    .option('-c, --config <file>', 'the agent\'s config file (for its address and token)')
    .option('--url <url>', 'the agent\'s address (default: from --config, else http://127.0.0.1:8080)')
    .action(async (opts: { model: string; input: string; config?: string; url?: string }) => {
      try {
        const cfg = opts.config ? loadConfig(opts.config) : undefined;
        const host = cfg && !['0.0.0.0', '::'].includes(cfg.health.host) ? cfg.health.host : '127.0.0.1';
        const url = opts.url ?? (cfg ? `http://${host.includes(':') ? `[${host}]` : host}:${cfg.health.port}` : 'http://127.0.0.1:8080');
        const result = await inferOnce({ url, model: opts.model, input: opts.input, token: process.env.EDGE_AGENT_TOKEN ?? cfg?.health.token });
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      } catch (err) {
        process.stderr.write(`edge-agent: ${describe(err)}\n`);
        process.exitCode = 1;
      }
    });
  registerUpdateCommands(program, fail);
  return program;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/(dist\/)?agent\//, 'agent/'));
if (isMain || process.env.EDGE_AGENT_CLI === '1') {
  buildCli().parseAsync(process.argv).catch(fail);
}
