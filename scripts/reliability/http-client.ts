// A lean HTTP/1.1 client for load generation: keep-alive sockets, one request at a time
// per socket (no pipelining, so each latency is that request's), a prepared request buffer,
// and a minimal response parser. fetch() costs about 0.6-0.8 ms of CPU per request here; on a
// 2-core machine an open loop at 1000 req/s saturated the generator (event-loop lag of
// seconds), and its own delays were counted as the agent's latency.
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  /** Header block, lower-cased. */
  headers: string;
  body: string;
}

export interface Prepared {
  head: string;
  body: Buffer;
}

interface Conn {
  socket: Socket;
  buf: Buffer;
  pending?: { resolve: (r: RawResponse) => void; reject: (e: Error) => void };
}

export class RawHttpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #idle: Conn[] = [];
  readonly #all = new Set<Conn>();
  /** Connections opened so far (a server that closes after each answer makes this grow). */
  opened = 0;

  readonly #maxConnections: number;
  /** Requests waiting for a free connection (at maxConnections). */
  readonly #waiting: ((c: Conn) => void)[] = [];

  /**
   * At most `maxConnections` sockets, like a few local clients with keep-alive pools; beyond
   * that a request waits here for a free one (and its latency, measured from the call, says so).
   * Unbounded, an open loop against a slow server opens thousands of connections a second and
   * overflows the listen queue: dropped SYNs come back after 1 s, 3 s, ... of retransmission.
   */
  constructor(url: string, maxConnections = Infinity) {
    const u = new URL(url);
    this.#host = u.hostname;
    this.#port = Number(u.port);
    this.#maxConnections = maxConnections;
  }

  /** A POST of a JSON body, prepared once and sent many times. */
  prepare(path: string, json: string): Prepared {
    const body = Buffer.from(json);
    return { head: `POST ${path} HTTP/1.1\r\nHost: ${this.#host}:${this.#port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n`, body };
  }

  /** `headers`: more header lines for this request alone ("name: value\r\n" each). */
  async request(prepared: Prepared, timeoutMs = 30_000, headers = ''): Promise<RawResponse> {
    const c = this.#idle.pop() ?? (this.#all.size < this.#maxConnections ? this.#open() : await new Promise<Conn>((r) => this.#waiting.push(r)));
    return new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.socket.destroy(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      c.pending = {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      c.socket.cork();
      c.socket.write(`${prepared.head}${headers}\r\n`);
      c.socket.write(prepared.body);
      c.socket.uncork();
    });
  }

  close(): void {
    for (const c of this.#all) c.socket.destroy();
  }

  #open(): Conn {
    const c: Conn = { socket: connect(this.#port, this.#host), buf: Buffer.alloc(0) };
    this.opened++;
    c.socket.setNoDelay(true);
    this.#all.add(c);
    c.socket.on('data', (d: Buffer) => {
      c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
      const end = c.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers = c.buf.subarray(0, end).toString('latin1').toLowerCase();
      const length = Number(/\r\ncontent-length: *(\d+)/.exec(headers)?.[1] ?? 0);
      if (c.buf.length < end + 4 + length) return;
      const body = c.buf.subarray(end + 4, end + 4 + length).toString('utf8');
      c.buf = c.buf.subarray(end + 4 + length);
      const p = c.pending;
      c.pending = undefined;
      if (/\r\nconnection: *close/.test(headers)) this.#drop(c);
      else this.#release(c);
      p?.resolve({ status: Number(headers.slice(9, 12)), headers, body });
    });
    const fail = (err?: Error) => {
      this.#drop(c);
      const p = c.pending;
      c.pending = undefined;
      p?.reject(err ?? new Error('connection closed before an answer'));
    };
    c.socket.on('error', fail);
    c.socket.on('close', () => fail());
    return c;
  }

  #release(c: Conn): void {
    const next = this.#waiting.shift();
    if (next) next(c);
    else this.#idle.push(c);
  }

  #drop(c: Conn): void {
    if (!this.#all.delete(c)) return;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    c.socket.destroy();
    // A waiting request gets a new connection in place of this one.
    const next = this.#waiting.shift();
    if (next) next(this.#open());
  }
}
