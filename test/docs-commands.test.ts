// Every edge-agent / edge-model / edge-fleet command line in README.md and docs/*.md parses with
// the real CLI: no command, subcommand or option the CLI does not have, no missing argument.
// Values that are placeholders (<id>, NAME@VERSION) may fail their own check; that is all.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError, type Command } from 'commander';
import { buildCli as agentCli } from '../agent/cli.js';
import { buildCli as modelCli, registerExtensions } from '../tools/edge-model/cli.js';
import { buildFleetCli } from '../controller/cli.js';

t.setTimeout(60_000);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docs = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const PROGRAMS: Record<string, () => Command> = { 'edge-agent': agentCli, 'edge-model': modelCli, 'edge-fleet': buildFleetCli };
// At a command's position: start of the line or span, or after a shell separator.
const NAME = /(?:^|&&|;|\|\||\$\(|^\$ )\s*(?:npx\s+|sudo\s+)?(edge-agent|edge-model|edge-fleet)\s+([^`\n]*)/g;

/** Shell words of one line: quotes kept together, comments and redirections dropped. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:\\.|[^"\\])*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    let w = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined) {
      if (w.startsWith('#') || w === '->' || /^[|&;>]|^2>|^\$\(/.test(w)) break;
      // Synopsis notation: [--json] is optional, ort|native is a choice (take the first).
      w = w.replace(/^\[+|\]+$/g, '');
      if (/^[^|]+\|[^|]+$/.test(w) && !w.includes('://')) w = w.split('|')[0]!;
      if (w === '...' || w === '') continue;
    }
    out.push(w);
  }
  return out;
}

/** In a code block a line is a whole command; in prose, `edge-model pack --calib DIR` may name
 * only the part being described, so there only the names are checked. */
interface Invocation { file: string; line: number; program: string; args: string[]; whole: boolean }

function invocations(): Invocation[] {
  const found: Invocation[] = [];
  for (const file of docs) {
    const text = readFileSync(path.join(root, file), 'utf8').replace(/\\\n\s*/g, ' ');
    const lines = text.split('\n');
    let inCode = false;
    let shell = false;
    lines.forEach((raw, i) => {
      const fence = /^\s*```(\w*)/.exec(raw);
      if (fence) {
        inCode = !inCode;
        shell = inCode && /^(sh|bash|shell|console)$/.test(fence[1]!);
        return;
      }
      // In prose only `inline code` counts; in code blocks the whole line.
      const spans = inCode ? [raw] : [...raw.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      for (const span of spans) {
        for (const m of span.matchAll(NAME)) {
          const args = words(m[2]!);
          // A bare mention (`edge-model` alone, or followed by prose) is not an invocation.
          if (args.length === 0 || !/^[a-z][a-z-]*$|^-/.test(args[0]!)) continue;
          found.push({ file, line: i + 1, program: m[1]!, args, whole: shell });
        }
      }
    });
  }
  return found;
}

/** The program with every action replaced by nothing and errors thrown, not printed. */
async function dryProgram(make: () => Command): Promise<Command> {
  const program = make();
  if (make === modelCli) await registerExtensions(program);
  const quiet = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (c !== program) c.action(() => undefined);
    c.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

const NAMES = new Set(['commander.version', 'commander.helpDisplayed', 'commander.unknownOption', 'commander.unknownCommand', 'commander.excessArguments', 'commander.conflictingOption']);
const WHOLE = new Set([...NAMES, 'commander.optionMissingArgument', 'commander.missingArgument', 'commander.missingMandatoryOptionValue']);

t.test('every documented command line parses', async (t) => {
  const all = invocations();
  t.ok(all.length >= 40, `${all.length} command lines found in ${docs.length} files`);
  for (const inv of all) {
    let error: CommanderError | undefined;
    try {
      await (await dryProgram(PROGRAMS[inv.program]!)).parseAsync(inv.args, { from: 'user' });
    } catch (err) {
      if (!(err instanceof CommanderError)) throw err;
      // --help and the program's --version end parsing on purpose; a subcommand's --version
      // swallowed by the program's (publish --version printed 0.1.0) is an error.
      const asked = (err.code === 'commander.version' && /^(-V|--version)$/.test(inv.args[0]!)) ||
        (['commander.helpDisplayed', 'commander.help'].includes(err.code) && inv.args.some((a) => a === '--help' || a === '-h' || a === 'help'));
      if (!asked) error = err;
    }
    const structural = error && (inv.whole ? WHOLE : NAMES).has(error.code);
    t.notOk(structural, `${inv.file}:${inv.line}: ${inv.program} ${inv.args.join(' ')}${structural ? ` -> ${error!.message}` : ''}`);
  }
});

t.test('the checker catches what it is for', async (t) => {
  const bad = async (args: string[]) => {
    try {
      await (await dryProgram(buildFleetCli)).parseAsync(args, { from: 'user' });
      return undefined;
    } catch (err) {
      return (err as CommanderError).code;
    }
  };
  t.equal(await bad(['publish', 'x.edgepkg', '--no-such-flag']), 'commander.unknownOption');
  t.equal(await bad(['publsh', 'x.edgepkg']), 'commander.unknownCommand');
  t.equal(await bad(['publish']), 'commander.missingArgument');
  t.equal(await bad(['publish', 'x.edgepkg', '--version', '1.0.0']), undefined, 'publish --version is publish\'s own option');
});
