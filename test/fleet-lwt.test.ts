// The retained status topic tells the fleet whether a device is up: the agent (a real child
// process) publishes "online" on connect; when it is SIGKILLed the broker publishes its Last
// Will ("offline", connection lost); a clean SIGTERM publishes "offline" itself.
import t from 'tap';
import { cpuFeatures, kernelVariant } from '../agent/hardware.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { spawnAgent } from './helpers/agent.js';
import { waitFor } from './helpers/wait.js';
import { watcher } from './fleet-support.js';

interface Status { state: string; reason?: string; deviceId: string; agentVersion: string; kernelVariant: string; uptimeSeconds: number }

t.test('Last Will and clean shutdown on the retained status topic', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const w = await watcher(broker.url, ['edge/v1/lwt-dev/status']);
  t.teardown(() => w.close());
  const statuses = (): Status[] => w.messages.filter((m) => m.payload.length).map((m) => JSON.parse(m.payload.toString()) as Status);
  const config = { deviceId: 'lwt-dev', log: { level: 'warn' }, mqtt: { url: broker.url, keepaliveSeconds: 5, reconnectMinMs: 50, reconnectMaxMs: 200 }, security: { requireSignedPackages: false } };

  await t.test('SIGKILL: the broker publishes the Last Will', async (t) => {
    const agent = spawnAgent(config);
    t.teardown(() => { if (agent.proc.exitCode === null) agent.kill('SIGKILL'); });
    const online = await waitFor(() => statuses().find((s) => s.state === 'online'), { timeoutMs: 30_000, what: () => `online status (agent stderr: ${agent.stderr()})` });
    t.match(online, { deviceId: 'lwt-dev', agentVersion: String, kernelVariant: String, arch: process.arch, uptimeSeconds: Number });
    // One meaning for kernelVariant: the variant in use, as /v1/status says it (agent/hardware.ts),
    // not the CPU's feature list (this process runs the same addon on the same CPU).
    t.same([online.kernelVariant, (online as unknown as { cpuFeatures: string }).cpuFeatures], [kernelVariant(), cpuFeatures()], `retained status: variant ${online.kernelVariant}, features ${cpuFeatures()}`);
    const seen = w.messages.length;
    agent.kill('SIGKILL');
    await agent.exited();
    const will = await waitFor(() => statuses().slice(seen).find((s) => s.state === 'offline'), { timeoutMs: 20_000, what: 'the Last Will' });
    t.equal(will.reason, 'connection lost', 'the offline message is the Last Will');
    const late = await watcher(broker.url, ['edge/v1/lwt-dev/status']);
    t.teardown(() => late.close());
    const retained = await waitFor(() => late.messages[0], { what: 'the retained status for a new subscriber' });
    t.equal((JSON.parse(retained.payload.toString()) as Status).state, 'offline', 'a new subscriber sees it offline (retained)');
  });

  await t.test('SIGTERM: the agent says offline itself', async (t) => {
    const seen = w.messages.length;
    const agent = spawnAgent(config);
    t.teardown(() => { if (agent.proc.exitCode === null) agent.kill('SIGKILL'); });
    await waitFor(() => statuses().slice(seen).find((s) => s.state === 'online'), { timeoutMs: 30_000, what: 'online again' });
    agent.kill('SIGTERM');
    const res = await agent.exited();
    t.equal(res.code, 0, 'clean exit');
    const off = await waitFor(() => statuses().slice(seen).find((s) => s.state === 'offline'), { what: 'the offline status' });
    t.equal(off.reason, undefined, 'not the Last Will: published by the agent on its way out');
  });
});
