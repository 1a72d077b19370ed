// POST /v1/models/:name/feedback {"id": ANSWER_ID, "label": LABEL}: the application says what
// the right answer was (agent/learning/field-examples.ts, docs/learning.md). LABEL is a class
// index or class name, or an array of them for a batched answer. 200 {"id", "example",
// "correct"}; a bad body 400, an unknown model or id 404, a second label for an answer 409;
// nothing is stored unless it is answered 200. GET /v1/learning: what was kept today.
import type { FastifyInstance } from 'fastify';
import { Errors } from '../errors.js';
import type { FieldExamples } from '../learning/field-examples.js';
import type { ModelRuntime } from '../runtime/model-runtime.js';

/** Feedback for a served model: the route's and the fleet command's one path. */
export function giveFeedback(runtime: ModelRuntime, examples: FieldExamples, name: string, body: unknown): ReturnType<FieldExamples['feedback']> {
  if (!runtime.has(name)) throw Errors.MODEL_NOT_FOUND(name, runtime.list().map((x) => String(x.name)));
  return examples.feedback(name, body);
}

export function registerFeedbackRoutes(app: FastifyInstance, runtime: ModelRuntime, examples: () => FieldExamples): void {
  app.post<{ Params: { name: string }; Body: unknown }>('/v1/models/:name/feedback', async (req) => giveFeedback(runtime, examples(), req.params.name, req.body));
  app.get('/v1/learning', async () => examples().stats);
}
