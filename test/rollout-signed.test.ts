// A rollout's fleet-wide rollback of a version the controller never published is a
// `models.rollback` command. Devices that require signed commands must get it signed by the
// controller's command key (`edge-fleet serve --command-key`), or they refuse it.
import t from 'tap';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, tempDir, watcher } from './fleet-support.js';
import { generateKeyPair } from '../agent/security/signing.js';
import { signCommand } from '../agent/security/command-signing.js';
import { ControllerFleetPort } from '../controller/rollout/fleet-port.js';
import { topics } from '../protocol/topics.js';

t.test('the rollback command of a rollout is signed with the controller key', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const keys = generateKeyPair();
  const device = 'signed-rb-1';
  const a = await startAgent(broker.url, device, { security: { requireSignedPackages: false, commands: { requireSignature: true, controllerKeys: [keys.publicKeyPem] } } });
  t.teardown(() => a.stop());
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  const wire = await watcher(broker.url, [topics.cmd(device)]);
  t.teardown(() => wire.close());

  const answers: Record<string, unknown>[] = [];
  const log = (msg: string, extra?: Record<string, unknown>): void => {
    if (msg === 'rollback command answered' || msg === 'rollback command failed') answers.push({ msg, ...extra });
  };
  const unsignedPort = new ControllerFleetPort(ctl.store, () => ctl.ctl.client, () => ctl.ctl.protocolVersion, log);
  const signedPort = new ControllerFleetPort(ctl.store, () => ctl.ctl.client, () => ctl.ctl.protocolVersion, log,
    (cmd, dev) => signCommand(cmd, dev, keys.privateKeyPem));

  // digits@0.9.0 was never published: the port falls back to the rollback command.
  await unsignedPort.setDesired(device, 'digits', '0.9.0');
  await waitFor(() => answers.length === 1, { timeoutMs: 20_000, what: 'the unsigned rollback answered' });
  t.match(answers[0], { msg: 'rollback command answered', ok: false, error: 'EDGE_COMMAND_SIGNATURE', signed: false },
    'without a key the device refuses the rollback for its missing signature');

  await signedPort.setDesired(device, 'digits', '0.9.0');
  await waitFor(() => answers.length === 2, { timeoutMs: 20_000, what: 'the signed rollback answered' });
  t.equal(answers[1].signed, true);
  t.not(answers[1].error, 'EDGE_COMMAND_SIGNATURE', `with the key the signature is accepted (answer: ${JSON.stringify(answers[1])})`);
  const sent = wire.messages.map((m) => JSON.parse(m.payload.toString('utf8')) as { name: string; sig?: { keyId: string } });
  t.equal(sent.filter((c) => c.name === 'models.rollback').length, 2, 'two rollback commands on the wire');
  t.ok(sent[1].sig?.keyId, 'the second carries a signature');
});

t.test('edge-fleet serve refuses a command key that is not a private ed25519 key, or that others can read', async (t) => {
  const { dir, remove } = tempDir('edge-fleet-key-');
  t.teardown(remove);
  const cli = path.resolve('dist/controller/cli.js');
  const run = (key: string): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [cli, 'serve', '--broker', 'mqtt://127.0.0.1:1', '--db', path.join(dir, 'f.db'), '--command-key', key], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr };
  };
  const pub = path.join(dir, 'pub.pem');
  writeFileSync(pub, generateKeyPair().publicKeyPem, { mode: 0o600 });
  const notKey = run(pub);
  t.not(notKey.status, 0);
  t.match(notKey.stderr, /--command-key .*expected an ed25519 private key/, 'a public key is refused, naming what was expected');
  const open = path.join(dir, 'open.pem');
  writeFileSync(open, generateKeyPair().privateKeyPem, { mode: 0o644 });
  const loose = run(open);
  t.not(loose.status, 0);
  t.match(loose.stderr, /chmod 600/, 'a key other users can read is refused');
});
