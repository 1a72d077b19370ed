// A TCP proxy between the agent and the broker that can stall the stream (both directions, or
// only broker->agent so PUBACKs stop coming back) and cut every connection: a flaky network
// and a consumer that stops acknowledging, without touching the broker.
import net from 'node:net';

export class FlakyProxy {
  #server = net.createServer((c) => this.#accept(c));
  #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  #stall: 'none' | 'both' | 'down' = 'none';
  port = 0;
  cuts = 0;
  stalls = 0;

  constructor(readonly upstreamPort: number) {}

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return `mqtt://127.0.0.1:${this.port}`;
  }

  #accept(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const close = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    this.#apply(pair);
  }

  #apply(p: { client: net.Socket; upstream: net.Socket }): void {
    // pause() stops reading: the kernel buffers fill and TCP backpressure does the rest,
    // exactly what a stalled path looks like to both ends.
    const flow = (from: net.Socket, to: net.Socket, on: boolean): void => {
      from.unpipe(to);
      if (on) from.pipe(to);
      else from.pause();
    };
    flow(p.client, p.upstream, this.#stall !== 'both');
    flow(p.upstream, p.client, this.#stall === 'none');
  }

  /** 'both': nothing moves; 'down': the agent's packets reach the broker, nothing comes back. */
  stall(mode: 'both' | 'down'): void {
    this.#stall = mode;
    this.stalls++;
    for (const p of this.#pairs) this.#apply(p);
  }

  resume(): void {
    this.#stall = 'none';
    for (const p of this.#pairs) this.#apply(p);
  }

  /** Drops every connection at once (RST where the socket allows it). */
  cut(): void {
    this.cuts++;
    for (const p of this.#pairs) {
      p.client.resetAndDestroy?.();
      p.upstream.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
