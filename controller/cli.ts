#!/usr/bin/env node
// edge-fleet: the reference fleet controller (docs/protocol.md). `serve` keeps the database
// current; the other commands read it or talk to devices through the broker.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { ID_PATTERN } from '../protocol/names.js';
import { AGENT_VERSION } from '../agent/version.js';
import type { EmbeddedBroker } from './embedded-broker.js';
import { FleetStore } from './store.js';
import { isPostgresUrl, PostgresControllerStore } from './store/postgres.js';
import { SqliteControllerStore } from './store/sqlite.js';
import type { ControllerStore } from './store/types.js';
import { servePostgres } from './serve-postgres.js';
import { table } from './table.js';
import { countsText, pageText } from './device-text.js';
import { DEFAULT_LIMIT, DeviceQueryError, MAX_LIMIT, parseDeviceQuery, SORTS } from './device-query.js';
import { deployProblems, problemsText, reportedModels } from './deploy-problems.js';
import { readBrokerTls, type BrokerTls, type BrokerTlsFiles } from './broker-tls.js';

// The MQTT client, the broker and the package tools load only in the commands that use
// them, so the read-only commands (devices, telemetry, drift) start quickly.
const lazy = {
  connect: () => import('./connect.js'),
  broker: () => import('./embedded-broker.js'),
  publish: () => import('./publish.js'),
  requests: () => import('./requests.js'),
  serve: () => import('./serve.js'),
  signing: () => import('../agent/security/command-signing.js'),
};
import { startControllerDashboard, type ControllerDashboard } from './dashboard/controller-dashboard.js';
import { registerRolloutCommands } from './rollout/commands.js';
import { registerProvisioningCommands } from './provisioning/commands.js';
import { RolloutLoop } from './rollout/loop.js';
import { registerDatasetCommand } from './dataset-cli.js';
import type { CommandSigner } from './rollout/fleet-port.js';
import { checkPrivateKeyFile } from '../agent/security/key-file.js';
import { createPrivateKey } from 'node:crypto';

const DEFAULT_DB = process.env.EDGE_FLEET_DB ?? 'edge-fleet.db';
const DEFAULT_BROKER = process.env.EDGE_FLEET_BROKER ?? 'mqtt://127.0.0.1:1883';

function out(json: boolean, rows: unknown, render: () => string): void {
  process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : render());
}

/** An ed25519 private key (PEM) that only its owner can read; a clear error otherwise. */
function readCommandKey(file: string): string {
  checkPrivateKeyFile(file, '--command-key');
  const pem = readFileSync(file, 'utf8');
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new InvalidArgumentError(`--command-key ${file}: expected an ed25519 private key in PEM ("edge-model keygen" writes one): ${(err as Error).message}`);
  }
  if (type !== 'ed25519') throw new InvalidArgumentError(`--command-key ${file}: expected an ed25519 private key, got ${type}`);
  return pem;
}

function openStore(file: string, mustExist = true): FleetStore {
  if (mustExist && !existsSync(file)) throw new Error(`no controller database at ${file}; start "edge-fleet serve --db ${file}" first or pass --db`);
  return new FleetStore(file);
}

/** The database for the read-only commands: a SQLite file that must exist, or a postgres:// URL. */
async function openReadStore(db: string): Promise<ControllerStore> {
  if (isPostgresUrl(db)) return PostgresControllerStore.open(db);
  return new SqliteControllerStore(openStore(db));
}

function parseJsonArg(value: string): unknown {
  try {
    const v = JSON.parse(value) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new InvalidArgumentError(`expected a JSON object, e.g. '{"name":"digits"}' (${(err as Error).message})`);
  }
}

function deviceId(value: string): string {
  if (!ID_PATTERN.test(value)) throw new InvalidArgumentError(`expected a device id (letters, digits, _ and -), got "${value}"`);
  return value;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

async function withClient<T>(broker: string, tls: BrokerTls | undefined, fn: (c: import('./connect.js').FleetConnection) => Promise<T>): Promise<T> {
  const { connectFleet } = await lazy.connect();
  const conn = await connectFleet(broker, { clientId: `edge-fleet-cli-${process.pid}-${Date.now().toString(36)}`, clean: true, tls });
  try {
    return await fn(conn);
  } finally {
    await conn.client.endAsync().catch(() => undefined);
  }
}

/** Drift aggregation from controller/drift when that part is installed; else the stored reports. */
async function driftView(store: FleetStore): Promise<unknown> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const f of ['drift/index.js', 'drift/index.ts']) {
    const file = path.join(here, f);
    if (!existsSync(file)) continue;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      process.stderr.write(`edge-fleet: drift aggregation unavailable (${err instanceof Error ? err.message : String(err)}); listing stored reports\n`);
      break;
    }
    const fn = ['aggregateDrift', 'summarizeDrift'].map((n) => mod[n]).find((v) => typeof v === 'function') as
      ((reports: unknown[], store?: FleetStore) => unknown) | undefined;
    if (fn) return fn(store.driftReports(10_000), store);
  }
  return store.driftReports(100);
}

/** --ca/--cert/--key: mutual TLS with a broker that requires client certificates (docs/security.md). */
function brokerTlsOptions(cmd: Command): Command {
  return cmd
    .option('--ca <file>', 'CA certificate (PEM) that signed the broker\'s certificate, for mqtts:// brokers')
    .option('--cert <file>', 'the controller\'s client certificate (PEM), for brokers with require_certificate')
    .option('--key <file>', 'the controller\'s private key (PEM, mode 600)');
}

/** The models of a device's reported document, whatever the database holds. */
export function buildFleetCli(): Command {
  const program = new Command('edge-fleet')
    .description('Reference fleet controller for edge-agent devices (MQTT, docs/protocol.md).')
    .version(AGENT_VERSION)
    // Program options only before the subcommand: `publish --version 1.2.0` is publish's own
    // option, not the program's -V/--version (which printed 0.1.0 and published nothing).
    .enablePositionalOptions()
    .showHelpAfterError();

  brokerTlsOptions(program.command('serve'))
    .description('subscribe to the fleet and keep the database current; serve model artifacts')
    .option('--broker <url|embedded>', 'broker URL, or "embedded" to run one in this process (MQTT 3.1.1)', DEFAULT_BROKER)
    .option('--port <n>', 'port of the embedded broker', positiveInt, 1883)
    .option('--db <file|url>', 'controller database: a SQLite file, or postgres://user@host:port/database (replicas share one)', DEFAULT_DB)
    .option('--retention-days <n>', 'PostgreSQL: drop telemetry older than this many days (by day partition)', positiveInt)
    .option('--id <name>', 'MQTT client id (persistent session; one per replica)', `edge-fleet-${hostname()}`)
    .option('--share <group>', 'MQTT 5 shared-subscription group for replicas ("none" to disable)', 'edge-fleet')
    .option('--http <port>', 'serve the fleet dashboard on this port (0 picks one)', (v) => (v === '0' ? 0 : positiveInt(v)))
    .option('--http-host <host>', 'address of the dashboard', '127.0.0.1')
    .option('--no-rollouts', 'do not carry out rollout plans in this replica')
    .option('--command-key <file>', 'sign the commands rollouts send (ed25519 private key, PEM), for devices with security.commands.requireSignature')
    .option('--provisioning <dir>', 'answer device enrollments with the provisioning state in this directory ("edge-fleet enroll init")')
    .option('--stats <ms>', 'print a JSON line of RSS, event-loop lag and counters on stdout every <ms>', positiveInt)
    .action(async (o: { broker: string; port: number; db: string; retentionDays?: number; id: string; share: string; http?: number; httpHost: string; rollouts: boolean; commandKey?: string; provisioning?: string; stats?: number } & BrokerTlsFiles) => {
      const tls = readBrokerTls(o);
      const commandKey = o.commandKey ? readCommandKey(o.commandKey) : undefined;
      let embedded: EmbeddedBroker | undefined;
      let url = o.broker;
      const { FleetController } = await lazy.serve();
      if (o.broker === 'embedded') {
        const { startEmbeddedBroker } = await lazy.broker();
        embedded = await startEmbeddedBroker({ port: o.port });
        url = embedded.url;
      }
      const log = (msg: string, extra?: Record<string, unknown>): void => {
        process.stderr.write(`edge-fleet: ${msg}${extra ? ' ' + JSON.stringify(extra) : ''}\n`);
      };
      if (isPostgresUrl(o.db)) {
        const { signCommand } = await lazy.signing();
        return servePostgres(o, url, tls, log, () => embedded?.close(), commandKey ? (cmd, device) => signCommand(cmd, device, commandKey) : undefined);
      }
      const store = openStore(o.db, false);
      const ctl = new FleetController(store, { broker: url, tls, clientId: o.id, share: o.share === 'none' ? undefined : o.share, log });
      await ctl.start();
      const provisioning = o.provisioning ? new (await import('./provisioning/service.js')).ProvisioningService(o.provisioning, { broker: url, clientId: o.id, tls, log }) : undefined;
      await provisioning?.start();
      // Rollout plans are carried out here; replicas sharing the database take a lease per rollout
      // (RolloutLoop.leaseMs), so each step is done by one of them and a dead one is replaced.
      let sign: CommandSigner | undefined;
      if (commandKey) {
        const { signCommand } = await lazy.signing();
        sign = (cmd, device) => signCommand(cmd, device, commandKey);
      }
      const rollouts = o.rollouts ? new RolloutLoop(ctl, log, undefined, sign) : undefined;
      rollouts?.start();
      const dashboard: ControllerDashboard | undefined = o.http === undefined ? undefined : await startControllerDashboard(ctl, { port: o.http, host: o.httpHost, log });
      const dashboardUrl = dashboard?.url;
      log(`serving`, { broker: url, embedded: Boolean(embedded), db: path.resolve(o.db), protocolVersion: ctl.protocolVersion, clientId: o.id });
      // The embedded broker's URL on stdout, for scripts that start it on port 0.
      process.stdout.write(JSON.stringify({ ready: true, broker: url, db: path.resolve(o.db), dashboard: dashboardUrl }) + '\n');
      if (o.stats) (await import('./process-stats.js')).startStatsLines(o.stats, () => ({ ...ctl.counters }), (l) => process.stdout.write(l));
      let stopping = false;
      const stop = async (): Promise<void> => {
        if (stopping) process.exit(130);
        stopping = true;
        rollouts?.stop();
        await dashboard?.app.close();
        await provisioning?.stop();
        await ctl.stop();
        await embedded?.close();
        store.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
    });

  program.command('devices')
    .description('devices, a page at a time (filtered and sorted by the database), with counts by state and model version')
    .option('--db <file|url>', 'controller database (SQLite file or postgres:// URL)', DEFAULT_DB)
    .option('--limit <n>', `at most this many devices (1 to ${MAX_LIMIT})`, String(DEFAULT_LIMIT))
    .option('--offset <n>', 'skip this many devices first', '0')
    .option('--state <state>', 'only devices in this state (online, offline, unknown)')
    .option('--search <text>', 'only devices whose id contains this text')
    .option('--model <name>', 'only devices serving this model (per their reported state)')
    .option('--version <version>', 'with --model, or as NAME@VERSION: only devices serving this version')
    .option('--group <group>', 'only devices in this group')
    .option('--sort <key>', `sort by ${SORTS.join(', ')}`, 'deviceId')
    .option('--order <order>', 'asc or desc', 'asc')
    .option('--json', 'print the page\'s devices as JSON (--counts: the counts)')
    .option('--counts', 'print only the counts by state and by model version')
    .action(async (o: { db: string; json?: boolean; counts?: boolean } & Record<string, string | undefined>) => {
      let q;
      try {
        const { db: _db, json: _json, counts: _counts, ...params } = o;
        q = parseDeviceQuery(params);
      } catch (err) {
        if (err instanceof DeviceQueryError) throw new InvalidArgumentError(err.message.replace(/^(\w+)/, '--$1'));
        throw err;
      }
      const store = await openReadStore(o.db);
      const [counts, page] = await Promise.all([store.deviceCounts(), o.counts ? undefined : store.devicePage(q)]).finally(() => store.close());
      if (!page) {
        out(Boolean(o.json), counts, () => countsText(counts));
        return;
      }
      const rows = page.rows.map((d) => ({
        device: d.deviceId,
        state: d.state,
        version: d.status?.agentVersion ?? null,
        models: ((d.status?.models as { name: string; version: string }[] | undefined) ?? []).map((m) => `${m.name}@${m.version}`).join(' ') || null,
        sync: reportedModels(d.reported).map((m) => `${m.name}@${m.version}:${m.state}`).join(' ') || null,
        uptime: d.uptimeSeconds ?? null,
        lastSeen: d.lastSeen,
        // A failed or rolled-back version with the device's own reason: why a deploy did not land.
        problems: problemsText(deployProblems(d.reported)) || null,
      }));
      out(Boolean(o.json), page.rows, () => countsText(counts) + '\n' + table(rows) + pageText(page, q));
    });

  brokerTlsOptions(program.command('cmd'))
    .description('send a command to a device and print its reply')
    .argument('<device>', 'device id', deviceId)
    .argument('<name>', 'command: ping, status, models.list, models.activate, models.rollback, telemetry.flush, samples.collect, feedback')
    .option('--args <json>', 'arguments (JSON object)', parseJsonArg, {})
    .option('--broker <url>', 'broker URL', DEFAULT_BROKER)
    .option('--db <file>', 'record the command and reply in this database (when it exists)', DEFAULT_DB)
    .option('--timeout <ms>', 'how long to wait for the reply', positiveInt, 15_000)
    .option('--sign-key <file>', 'sign the command with this ed25519 private key (PEM), for devices with security.commands.requireSignature')
    .option('--json', 'print the whole reply as JSON')
    .action(async (device: string, name: string, o: { args: unknown; broker: string; db: string; timeout: number; signKey?: string; json?: boolean } & BrokerTlsFiles) => {
      const tls = readBrokerTls(o);
      const key = o.signKey ? readFileSync(o.signKey, 'utf8') : undefined;
      const { sendCommand } = await lazy.requests();
      const { signCommand } = await lazy.signing();
      const store = existsSync(o.db) ? new FleetStore(o.db) : undefined;
      const reply = await withClient(o.broker, tls, async ({ client, protocolVersion }) => {
        const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
        store?.commandSent(id, device, name, o.args);
        return sendCommand(client, protocolVersion, device, name, o.args, {
          timeoutMs: o.timeout, id, sign: key ? (cmd) => signCommand(cmd, device, key) : undefined,
        });
      });
      if (reply.id) store?.commandReplied(reply.id, device, reply);
      store?.close();
      if (o.json) process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
      else if (reply.ok) process.stdout.write(JSON.stringify(reply.result, null, 2) + '\n');
      else process.stderr.write(`${device}: ${reply.error?.code}: ${reply.error?.message}\n`);
      process.exitCode = reply.ok ? 0 : 2;
    });

  program.command('publish')
    .description('store a model package (.edgepkg or folder) so devices can download it in chunks')
    .argument('<package>', '.edgepkg file or package folder')
    .option('--db <file|url>', 'controller database (SQLite file or postgres:// URL)', DEFAULT_DB)
    .option('--name <name>', 'model name; must be the manifest\'s (default: from the manifest)')
    .option('--version <version>', 'model version; must be the manifest\'s (default: from the manifest)')
    .option('--chunk-size <bytes>', 'chunk size', positiveInt, 256 * 1024)
    .option('--json', 'print JSON')
    .action(async (pkg: string, o: { db: string; name?: string; version?: string; chunkSize: number; json?: boolean }) => {
      const { publishPackage } = await lazy.publish();
      const store = isPostgresUrl(o.db) ? await PostgresControllerStore.open(o.db) : openStore(o.db, false);
      const art = await publishPackage(store, pkg, { name: o.name, version: o.version, chunkSize: o.chunkSize });
      await store.close();
      const row = { name: art.name, version: art.version, sha256: art.sha256, size: art.size, chunks: art.chunks.length, signed: art.signed ? 'yes' : 'NO' };
      if (!art.signed) {
        process.stderr.write(`edge-fleet: warning: ${pkg} is not signed: devices with security.requireSignedPackages (the default) will refuse it; ` +
          'sign it with "edge-model sign PACKAGE --key release.key" and publish again\n');
      }
      out(Boolean(o.json), art, () => table([row]) + `\nnext: edge-fleet deploy ${art.name}@${art.version} --device <id> | --group <g>\n`);
    });

  program.command('publish-release')
    .description('store an agent release (made by "edge-agent release pack") so devices can update themselves; roll it out with "edge-fleet rollout agent@VERSION --arch ARCH"')
    .argument('<file>', 'release artifact (.tar.gz)')
    .option('--db <file>', 'controller database', DEFAULT_DB)
    .option('--chunk-size <bytes>', 'chunk size', positiveInt, 256 * 1024)
    .option('--json', 'print JSON')
    .action(async (file: string, o: { db: string; chunkSize: number; json?: boolean }) => {
      const { publishRelease } = await import('./publish-release.js');
      const store = openStore(o.db, false);
      try {
        const art = await publishRelease(store, file, { chunkSize: o.chunkSize });
        if (!art.signed) process.stderr.write(`edge-fleet: warning: ${file} is not signed: every device will refuse it\n`);
        out(Boolean(o.json), art, () => table([{ name: art.name, version: art.version, arch: art.arch, sha256: art.sha256, size: art.size, chunks: art.chunks.length, signed: art.signed ? 'yes' : 'NO' }]) +
          `\nnext: edge-fleet rollout agent@${art.version} --arch ${art.arch} --group <g>\n`);
      } finally {
        store.close();
      }
    });

  brokerTlsOptions(program.command('deploy'))
    .description('set the desired version of a model for a device or a group (retained)')
    .argument('<model>', 'NAME@VERSION of a published package')
    .option('--device <id>', 'one device', deviceId)
    .option('--group <group>', 'every device in a group', deviceId)
    .option('--broker <url>', 'broker URL', DEFAULT_BROKER)
    .option('--db <file>', 'controller database', DEFAULT_DB)
    .option('--json', 'print JSON')
    .action(async (model: string, o: { device?: string; group?: string; broker: string; db: string; json?: boolean } & BrokerTlsFiles) => {
      const tls = readBrokerTls(o);
      const m = /^([^@]+)@(.+)$/.exec(model);
      if (!m) throw new InvalidArgumentError(`expected NAME@VERSION, got "${model}"`);
      if (Boolean(o.device) === Boolean(o.group)) throw new InvalidArgumentError('give exactly one of --device ID or --group G');
      const store = openStore(o.db);
      const art = store.artifact({ name: m[1], version: m[2] });
      if (!art) {
        const have = store.artifacts().map((a) => `${a.name}@${a.version}`).join(', ') || 'none';
        store.close();
        throw new Error(`${model} is not published (published: ${have}); run "edge-fleet publish PACKAGE" first`);
      }
      const target = o.device ? { device: o.device } : { group: o.group! };
      const { deploy } = await lazy.requests();
      const res = await withClient(o.broker, tls, ({ client }) => deploy(client, store, target, art));
      store.close();
      out(Boolean(o.json), res, () => `desired state published on ${res.topic}\n${table((res.doc as { models: Record<string, unknown>[] }).models, ['name', 'version', 'sha256', 'size'])}`);
    });

  program.command('telemetry')
    .description("a device's stored telemetry: per-stream summary, or the records of one stream")
    .argument('<device>', 'device id', deviceId)
    .option('--db <file|url>', 'controller database (SQLite file or postgres:// URL)', DEFAULT_DB)
    .option('--stream <name>', 'print the records of this stream')
    .option('--limit <n>', 'at most this many records', positiveInt, 50)
    .option('--json', 'print JSON')
    .action(async (device: string, o: { db: string; stream?: string; limit: number; json?: boolean }) => {
      const store = await openReadStore(o.db);
      if (o.stream) {
        const rows = (await store.telemetry(device, { stream: o.stream })).slice(-o.limit);
        out(Boolean(o.json), rows, () => table(rows.map((r) => ({ seq: r.seq, time: new Date(r.ts).toISOString(), payload: r.payload }))));
      } else {
        const rows = await store.telemetrySummary(device);
        out(Boolean(o.json), rows, () => table(rows));
      }
      await store.close();
    });

  program.command('drift')
    .description('drift across the fleet (aggregated when controller/drift is installed)')
    .option('--db <file>', 'controller database', DEFAULT_DB)
    .option('--json', 'print JSON')
    .action(async (o: { db: string; json?: boolean }) => {
      const store = openStore(o.db);
      const view = await driftView(store);
      store.close();
      const rows = Array.isArray(view) ? view as Record<string, unknown>[] : [view as Record<string, unknown>];
      out(Boolean(o.json), view, () => table(rows.map((r) => ('report' in r ? { device: r.deviceId, time: new Date(r.ts as number).toISOString(), report: r.report } : r))));
    });

  registerRolloutCommands(program, { openStore: (f) => openStore(f), defaultDb: DEFAULT_DB });
  registerProvisioningCommands(program);
  registerDatasetCommand(program, { defaultDb: DEFAULT_DB, openReadStore });

  return program;
}

function fail(err: unknown): never {
  process.stderr.write(`edge-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/(dist\/)?controller\//, 'controller/'));
if (isMain || process.env.EDGE_FLEET_CLI === '1') {
  buildFleetCli().parseAsync(process.argv).catch(fail);
}
