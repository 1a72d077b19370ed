// Errors a user of `edge-model` can cause: their codes, statuses and sentences are in the one
// catalog (protocol/errors.ts, ToolErrors and the agent's PACKAGE_INVALID). The CLI prints the
// message alone (no stack) and exits non-zero.
export { EdgeError, ToolErrors, Errors } from '../../agent/errors.js';
