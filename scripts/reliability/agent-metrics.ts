// Readings from the agent's own /metrics (prom-client default metrics, prefix edge_agent_):
// the V8 heap and the count of major collections, to tell the garbage collector from a leak.

export interface HeapReading {
  usedMb: number;
  totalMb: number;
  majorGcs: number;
}

/** The V8 heap in use and committed, and major collections so far, from the agent's own /metrics (prom-client default metrics). */
export async function heapOf(url: string): Promise<HeapReading | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const num = (re: RegExp): number | undefined => {
      const m = re.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const used = num(/^edge_agent_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m);
    const total = num(/^edge_agent_nodejs_heap_size_total_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m);
    const major = num(/^edge_agent_nodejs_gc_duration_seconds_count\{[^}]*kind="major"[^}]*\} (\d+)/m) ?? 0;
    if (used === undefined || total === undefined) return undefined;
    return { usedMb: used / 1024 / 1024, totalMb: total / 1024 / 1024, majorGcs: major };
  } catch {
    return undefined;
  }
}
