// `edge-fleet rollout ...`: plan a staged rollout, watch it, halt it. The plan is stored in
// the controller database; `edge-fleet serve` carries it out and survives restarts.
import { Command, InvalidArgumentError } from 'commander';
import type { FleetStore } from '../store.js';
import { table } from '../table.js';
import { rolloutsView } from '../dashboard/views.js';
import { planRollout, RolloutDriver, type FleetPort } from './driver.js';
import { parseGates } from './plan.js';
import { parseStages } from './stages.js';
import { RolloutStore } from './store.js';
import { agentReleaseName } from '../../protocol/agent-release.js';
import { ControllerFleetPort } from './fleet-port.js';

export interface RolloutCliDeps {
  openStore(file: string): FleetStore;
  defaultDb: string;
}

/** A read-only view of the fleet for status: reports from the database, nothing published. */
function readOnlyPort(store: FleetStore): FleetPort {
  const port = new ControllerFleetPort(store, () => undefined, () => 5);
  return {
    groupMembers: (g) => port.groupMembers(g),
    reports: (m) => port.reports(m),
    currentVersion: (d, m) => port.currentVersion(d, m),
    setDesired: async () => { throw new Error('read-only'); },
  };
}

/** `--db` may be parsed by "rollout" itself or by its subcommand, depending on where it was written. */
function dbOf(o: { db: string }, cmd: Command, deps: RolloutCliDeps): string {
  const parent = cmd.parent?.opts() as { db?: string } | undefined;
  return o.db !== deps.defaultDb ? o.db : parent?.db ?? o.db;
}

export function registerRolloutCommands(program: Command, deps: RolloutCliDeps): void {
  const rollout = program.command('rollout')
    .description('staged (canary) rollouts with gates and fleet-wide rollback; "edge-fleet serve" carries them out')
    .argument('[model]', 'NAME@VERSION of a published package, or agent@VERSION for an agent release (with --arch)')
    .option('--arch <arch>', 'agent@VERSION: the architecture of the release (x64, arm64); one rollout per architecture', 'arm64')
    .option('--group <group>', 'devices of this group ("all" for every device)', 'all')
    .option('--stages <list>', 'percent of the group at each stage, ending at 100', '1,10,50,100')
    .option('--gate <rule...>', 'failure<=F committed>=F shadow>=F samples>=N drift<=F soak=S timeout=S field>=D (D may be negative) labels>=N')
    .option('--db <file>', 'controller database', deps.defaultDb)
    .option('--json', 'print JSON')
    .action((model: string | undefined, o: { group: string; stages: string; gate?: string[]; db: string; json?: boolean; arch: string }) => {
      if (!model) {
        rollout.help();
        return;
      }
      const m = /^([^@]+)@(.+)$/.exec(model);
      if (!m) throw new InvalidArgumentError(`expected NAME@VERSION, got "${model}"`);
      // An agent release is rolled out as the desired entry edge-agent-linux-ARCH (protocol/agent-release.ts), same plan, gates and halt.
      if (m[1] === 'agent') m[1] = agentReleaseName(o.arch);
      const stages = parseStages(o.stages);
      const gates = parseGates(o.gate ?? []);
      const store = deps.openStore(o.db);
      try {
        if (!store.artifact({ name: m[1]!, version: m[2]! })) {
          throw new Error(`${m[1]}@${m[2]} is not published; run "edge-fleet publish PACKAGE" (a model) or "edge-fleet publish-release FILE" (an agent release) first`);
        }
        const members = store.groupMembers(o.group);
        if (members.length === 0) throw new Error(`group "${o.group}" has no known devices`);
        const r = planRollout(new RolloutStore(store.db), { model: m[1]!, version: m[2]!, group: o.group, stages, gates });
        const row = { id: r.id, model: `${r.model}@${r.version}`, group: r.group, devices: members.length, stages: stages.join(','), state: r.state };
        process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : table([row]) + `\nwatch it: edge-fleet rollout status ${r.id}\n`);
      } finally {
        store.close();
      }
    });

  rollout.command('status')
    .description('progress of each rollout: stage, devices and what they report')
    .argument('[id]', 'one rollout')
    .option('--db <file>', 'controller database', deps.defaultDb)
    .option('--json', 'print JSON')
    .action((id: string | undefined, o: { db: string; json?: boolean }, cmd: Command) => {
      const store = deps.openStore(dbOf(o, cmd, deps));
      const json = o.json || Boolean((cmd.parent?.opts() as { json?: boolean } | undefined)?.json);
      try {
        const rs = new RolloutStore(store.db);
        const driver = new RolloutDriver(rs, readOnlyPort(store));
        const list = (id ? [id] : rs.list().map((r) => r.id)).map((x) => driver.status(x));
        const view = rolloutsView(list);
        if (json) {
          process.stdout.write(JSON.stringify(view, null, 2) + '\n');
          return;
        }
        for (const r of view as { id: string; model: string; version: string; group: string; state: string; reason?: string; fieldSummary?: string; stages: { percent: number; current: boolean; devices: { id: string; state: string; version?: string; reason?: string }[] }[] }[]) {
          process.stdout.write(`rollout ${r.id}: ${r.model}@${r.version} to ${r.group}: ${r.state}${r.reason ? ` (${r.reason})` : ''}\n`);
          if (r.fieldSummary) process.stdout.write(`${r.fieldSummary}\n`);
          const rows = r.stages.flatMap((s, i) => (s.devices.length ? s.devices : [{ id: '-', state: 'not started' }]).map((d) => ({
            stage: `${i + 1} (${s.percent}%)${s.current ? ' *' : ''}`, device: d.id, reports: 'version' in d && d.version ? `${d.version}: ${d.state}` : d.state, reason: 'reason' in d ? d.reason ?? '' : '',
          })));
          process.stdout.write(table(rows) + '\n');
        }
      } finally {
        store.close();
      }
    });

  rollout.command('halt')
    .description('stop a rollout and roll every device it touched back')
    .argument('<id>', 'rollout id')
    .option('--db <file>', 'controller database', deps.defaultDb)
    .option('--reason <text>', 'why', 'halted by operator')
    .action((id: string, o: { db: string; reason: string }, cmd: Command) => {
      const store = deps.openStore(dbOf(o, cmd, deps));
      try {
        const rs = new RolloutStore(store.db);
        const r = rs.get(id);
        if (!r) throw new Error(`no rollout ${id}`);
        // The serve loop publishes the rollback; here the plan only changes state.
        if (r.state !== 'running') throw new Error(`rollout ${id} is ${r.state}, not running`);
        rs.setState(id, 'halting', o.reason, { by: 'operator' });
        process.stdout.write(`rollout ${id} halted; "edge-fleet serve" rolls its devices back\n`);
      } finally {
        store.close();
      }
    });
}
