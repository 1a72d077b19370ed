// `edge-fleet dataset NAME --version V [--since ISO --devices a,b --labelled] --out DIR`:
// controller/dataset.ts exports the examples and labels that arrived for one model version.
import type { Command } from 'commander';
import { FleetErrors } from '../protocol/errors.js';
import { buildDataset, exportDataset, type SplitRatios } from './dataset.js';
import type { ControllerStore } from './store/types.js';
import { table } from './table.js';

export function registerDatasetCommand(program: Command, o: { defaultDb: string; openReadStore: (db: string) => Promise<ControllerStore> }): void {
  program.command('dataset')
    .description('export the field examples and labels of one model version as .npy inputs and labels files, split train/validation/test by example id')
    .argument('<model>', 'model name')
    .requiredOption('--version <v>', 'model version')
    .requiredOption('--out <dir>', 'a new or empty folder')
    .option('--since <iso>', 'only examples recorded at or after this time (ISO 8601)')
    .option('--devices <ids>', 'only these devices (comma-separated)')
    .option('--labelled', 'only examples with a label')
    .option('--split <train,validation,test>', 'percentages of the split (keep them the same across exports: the split of an id depends on them)', '80,10,10')
    .option('--db <file|url>', 'controller database (SQLite file or postgres:// URL)', o.defaultDb)
    .option('--json', 'print JSON')
    .action(async (model: string, a: { version: string; out: string; since?: string; devices?: string; labelled?: boolean; split: string; db: string; json?: boolean }) => {
      const ratios = parseSplit(a.split);
      let since: number | undefined;
      if (a.since !== undefined) {
        since = Date.parse(a.since);
        if (!/^\d{4}-\d\d-\d\d/.test(a.since) || Number.isNaN(since)) throw FleetErrors.DATASET(`--since ${JSON.stringify(a.since)} is not an ISO 8601 time such as 2026-12-01 or 2026-12-01T08:00:00Z`);
      }
      const devices = a.devices?.split(',').map((d) => d.trim()).filter(Boolean);
      const store = await o.openReadStore(a.db);
      try {
        const examples = await buildDataset(store, { model, version: a.version, since, devices, labelled: a.labelled });
        const counts = exportDataset(examples, a.out, ratios);
        if (a.json) {
          process.stdout.write(JSON.stringify({ out: a.out, counts }, null, 2) + '\n');
        } else {
          process.stdout.write(`${model}@${a.version}: ${examples.length} examples written to ${a.out}\n`);
          process.stdout.write(table(counts.map((c) => ({ split: c.split, examples: c.examples, labels: c.labels,
            'per class': Object.entries(c.perClass).map(([k, n]) => `${k}:${n}`).join(' ') || '-' }))));
        }
      } finally {
        await store.close();
      }
    });
}

/** "80,10,10" -> { train: 0.8, validation: 0.1 }: three whole percentages that add up to 100. */
export function parseSplit(text: string): SplitRatios {
  const parts = text.split(',').map((p) => p.trim());
  const n = parts.map(Number);
  if (parts.length !== 3 || n.some((v, i) => !/^\d+$/.test(parts[i]!) || v > 100) || n[0]! + n[1]! + n[2]! !== 100) {
    throw FleetErrors.DATASET(`--split ${JSON.stringify(text)}: expected three whole percentages for train, validation and test that add up to 100, such as 80,10,10`);
  }
  return { train: n[0]! / 100, validation: n[1]! / 100 };
}
