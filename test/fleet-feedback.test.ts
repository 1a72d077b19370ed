// Feedback from fleet apps over MQTT (issue 21 item 1): the device command "feedback"
// {model, id, label} through a real Mosquitto labels an answer the agent gave over HTTP, the
// same as POST /v1/models/:name/feedback: the reply says whether the prediction was right, a
// second label, an unknown model or id, a bad label or missing args are error replies, and
// nothing is counted for them.
import t from 'tap';
// One broker, one agent with the digits model, a handful of commands: a few seconds; a minute
// leaves room for a loaded machine.
t.setTimeout(60_000);
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { startAgent } from './fleet-support.js';
import { connectFleet } from '../controller/connect.js';
import { sendCommand } from '../controller/requests.js';
import { argmax, digitBatch, FP32, postJson } from './helpers/model-packages.js';

t.test('the feedback command labels an answer, once', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const a = await startAgent(broker.url, 'fb-dev-1', { mqtt: { telemetryAck: 'broker' }, models: [{ name: 'digits', package: FP32, backend: 'ort' }] });
  t.teardown(() => a.stop());
  const c = await connectFleet(broker.url, { clientId: 'fleet-app', clean: true });
  t.teardown(() => c.client.endAsync());
  const send = (args: unknown) => sendCommand(c.client, c.protocolVersion, 'fb-dev-1', 'feedback', args);

  const batch = digitBatch(0, 2);
  const ans = await postJson(`${a.agent.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(batch.data.subarray(0, 784)) } } });
  t.equal(ans.status, 200);
  const id = ans.body.id as string;
  const predicted = argmax(ans.body.outputs.logits.data);
  const wrong = (predicted + 1) % 10;

  const bad = await send({ model: 'digits', id, label: 'not-a-class' });
  t.match(bad, { ok: false, error: { code: 'EDGE_FEEDBACK_INVALID' } }, 'a label that is no class is refused');
  const unknownModel = await send({ model: 'nope', id, label: 0 });
  t.match(unknownModel, { ok: false, error: { code: 'EDGE_MODEL_NOT_FOUND' } });
  const unknownId = await send({ model: 'digits', id: '00000000-0000-4000-8000-000000000000', label: 0 });
  t.match(unknownId, { ok: false, error: { code: 'EDGE_ANSWER_NOT_FOUND' } });
  const noLabel = await send({ model: 'digits', id });
  t.match(noLabel, { ok: false, error: { code: 'EDGE_FLEET_BAD_ARGS' } }, 'a missing label is a bad-args reply');

  const ok = await send({ model: 'digits', id, label: wrong });
  t.match(ok, { ok: true, result: { id, example: false, correct: false } }, 'labelled: the prediction was not the label');
  const again = await send({ model: 'digits', id, label: predicted });
  t.match(again, { ok: false, error: { code: 'EDGE_FEEDBACK_DUPLICATE' } }, 'a second label for the same answer is refused');

  const ans2 = await postJson(`${a.agent.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(batch.data.subarray(784)) } } });
  const right = await send({ model: 'digits', id: ans2.body.id, label: argmax(ans2.body.outputs.logits.data) });
  t.match(right, { ok: true, result: { correct: true } });
  const stats = await (await fetch(`${a.agent.url}/v1/learning`)).json() as { feedback: { accepted: number } };
  t.equal(stats.feedback.accepted, 2, 'GET /v1/learning counts the two accepted labels, none of the refused ones');
});
