// gRPC status codes for the agent's errors, by their HTTP-like status.
import { status } from '@grpc/grpc-js';

export function statusOf(httpStatus: number): status {
  switch (httpStatus) {
    case 400: return status.INVALID_ARGUMENT;
    case 401: return status.UNAUTHENTICATED;
    case 403: return status.PERMISSION_DENIED;
    case 404: return status.NOT_FOUND;
    case 409: return status.FAILED_PRECONDITION;
    case 413: return status.RESOURCE_EXHAUSTED;
    case 422: return status.FAILED_PRECONDITION;
    case 429: return status.RESOURCE_EXHAUSTED;
    case 503: return status.UNAVAILABLE;
    case 504: return status.DEADLINE_EXCEEDED;
    default: return httpStatus >= 500 ? status.INTERNAL : status.UNKNOWN;
  }
}
