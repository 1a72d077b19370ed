// The fleet dashboard's live stream (GET /api/events, server-sent events) as a test reads it:
// each `update` event's document, parsed as it arrives.
export function openStream<T = Record<string, unknown>>(url: string): { updates: T[]; close(): void } {
  const updates: T[] = [];
  const ctl = new AbortController();
  void (async () => {
    const res = await fetch(`${url}/api/events`, { signal: ctl.signal });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = /^data: (.*)$/m.exec(event)?.[1];
        if (/^event: update$/m.test(event) && data) updates.push(JSON.parse(data) as T);
      }
    }
  })().catch(() => undefined);
  return { updates, close: () => ctl.abort() };
}
