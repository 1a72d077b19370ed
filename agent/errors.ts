// The agent's view of the error catalog, which lives in protocol/errors.ts (one catalog for
// the agent, the controller and the tools).
export * from '../protocol/errors.js';
