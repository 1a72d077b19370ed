// Cutting a graph into native and ONNX Runtime segments (agent/runtime/partition/segments.ts),
// table-driven on hand-written QDQ chains: the cuts fall on quantized tensors (a QuantizeLinear
// stays with its producer, a DequantizeLinear is copied to its readers), runs are as long as
// the dependencies allow, and every node lands in a segment.
import t from 'tap';
import { makeNode, type NodeProto } from '../agent/onnx/model.js';
import { cutSegments, type Side } from '../agent/runtime/partition/segments.js';

t.setTimeout(30_000);

/** `a:Op(b,c)` lines: output a, operator Op, inputs b and c. */
function graph(lines: string[]): NodeProto[] {
  return lines.map((l) => {
    const m = /^(\w+):(\w+)\(([\w,]*)\)$/.exec(l);
    if (!m) throw new Error(`bad line ${l}`);
    return makeNode(m[2], m[3] ? m[3].split(',') : [], [m[1]], {}, m[1]);
  });
}

interface Case {
  name: string;
  nodes: string[];
  inits?: string[];
  outputs: string[];
  ort: string[];
  /** Per segment: side, node names (outputs), inputs, outputs. */
  want: [Side, string[], string[], string[]][];
}

const cases: Case[] = [
  {
    name: 'an unsupported op in the middle: cut at the int8 tensors on both sides, DequantizeLinear copied over',
    nodes: ['xq:QuantizeLinear(x,s,z)', 'xd:DequantizeLinear(xq,s,z)', 'wd:DequantizeLinear(w,ws)', 'c:Conv(xd,wd)', 'cq:QuantizeLinear(c,s,z)',
      'cd:DequantizeLinear(cq,s,z)', 'e:Erf(cd)', 'eq:QuantizeLinear(e,s,z)', 'ed:DequantizeLinear(eq,s,z)', 'c2:Conv(ed,wd)', 'c2q:QuantizeLinear(c2,s,z)', 'y:DequantizeLinear(c2q,s,z)'],
    inits: ['s', 'z', 'w', 'ws'],
    outputs: ['y'],
    ort: ['e'],
    want: [
      ['native', ['xq', 'xd', 'wd', 'c', 'cq'], ['x'], ['cq']],
      ['ort', ['cd', 'e', 'eq'], ['cq'], ['eq']],
      ['native', ['wd', 'ed', 'c2', 'c2q', 'y'], ['eq'], ['y']],
    ],
  },
  {
    name: 'all supported: one native segment',
    nodes: ['xq:QuantizeLinear(x,s,z)', 'xd:DequantizeLinear(xq,s,z)', 'r:Relu(xd)', 'rq:QuantizeLinear(r,s,z)', 'y:DequantizeLinear(rq,s,z)'],
    inits: ['s', 'z'], outputs: ['y'], ort: [],
    want: [['native', ['xq', 'xd', 'r', 'rq', 'y'], ['x'], ['y']]],
  },
  {
    name: 'two branches: the native branch is not split by the ONNX Runtime one (Kahn order stays on a side while it can)',
    nodes: ['xq:QuantizeLinear(x,s,z)', 'a:DequantizeLinear(xq,s,z)', 'b:Softmax(a)', 'bq:QuantizeLinear(b,s,z)', 'c:Relu(a)', 'cq:QuantizeLinear(c,s,z)',
      'cd:DequantizeLinear(cq,s,z)', 'd:Relu(cd)', 'dq:QuantizeLinear(d,s,z)', 'bd:DequantizeLinear(bq,s,z)', 'dd:DequantizeLinear(dq,s,z)', 'y:Add(bd,dd)', 'yq:QuantizeLinear(y,s,z)'],
    inits: ['s', 'z'], outputs: ['yq'], ort: ['b'],
    want: [
      ['native', ['xq', 'a', 'c', 'cq', 'cd', 'd', 'dq'], ['x'], ['xq', 'dq']],
      ['ort', ['a', 'b', 'bq'], ['xq'], ['bq']],
      ['native', ['bd', 'dd', 'y', 'yq'], ['bq', 'dq'], ['yq']],
    ],
  },
  {
    name: 'a float tensor between ONNX Runtime nodes stays inside one segment; a Shape-like side input is a boundary',
    nodes: ['xq:QuantizeLinear(x,s,z)', 'xd:DequantizeLinear(xq,s,z)', 'sh:Shape(xd)', 'r:Reshape(xd,sh)', 'rq:QuantizeLinear(r,s,z)'],
    inits: ['s', 'z'], outputs: ['rq'], ort: ['sh'],
    want: [
      ['native', ['xq'], ['x'], ['xq']],
      ['ort', ['xd', 'sh'], ['xq'], ['sh']],
      ['native', ['xd', 'r', 'rq'], ['xq', 'sh'], ['rq']],
    ],
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const nodes = graph(c.nodes);
    const names = nodes.map((n) => n.output![0]);
    const segs = cutSegments({ nodes, initializers: new Set(c.inits ?? []), outputs: c.outputs }, (i) => c.ort.includes(names[i]));
    t.same(segs.map((s) => [s.side, s.nodes.map((i) => names[i]), s.inputs, s.outputs]), c.want, 'segments: side, nodes, inputs, outputs');
    const covered = new Set(segs.flatMap((s) => s.nodes));
    t.equal(covered.size, nodes.length, 'every node is in a segment');
    for (const [k, s] of segs.entries()) {
      if (k > 0) t.not(s.side, segs[k - 1].side, `segment ${k} switches side (runs are maximal)`);
      for (const i of s.inputs) {
        const made = segs.slice(0, k).some((p) => p.outputs.includes(i));
        t.ok(made || !names.includes(i), `segment ${k} input ${i} comes from an earlier segment or the caller`);
      }
    }
  });
}

t.test('a graph out of topological order is refused', async (t) => {
  const nodes = graph(['b:Relu(a)', 'a:Relu(b)']);
  t.throws(() => cutSegments({ nodes, initializers: new Set(), outputs: ['b'] }, () => false), /cycle or is not in topological order/);
});
