// Lifting the operators whose inputs or meaning changed before opset 13 and that need more than
// moving an attribute into an input: Resize (opset 10's fixed coordinate rules), Upsample
// (deprecated at 10, gone from ONNX Runtime's opset-13 kernels), TopK's k and Scatter's rename.
import { attr, dims, makeNode, makeTensor, tensorData, type NodeProto, type TensorProto } from '../../agent/onnx/model.js';
import { ToolErrors } from './errors.js';
import type { GraphIndex } from './graph.js';

const TARGET = 13;

function refuse(from: number, n: NodeProto, why: string): never {
  throw ToolErrors.MODEL_UNSUPPORTED(`the model uses opset ${from}, and its ${n.opType} node (${n.name}) cannot be lifted to opset ${TARGET} here: ${why}; convert the model to opset ${TARGET} or newer first (for example onnx.version_converter)`);
}

/** The attributes a node keeps, without the named ones. */
function keptAttrs(n: NodeProto, drop: string[]): NodeProto['attribute'] {
  return (n.attribute ?? []).filter((a) => !drop.includes(a.name!));
}

/**
 * Resize before opset 11 and Upsample compute every output pixel at x_out / scale (ONNX's
 * 'asymmetric'); ONNX Runtime rounds that nearest pixel down when a dimension grows and up when
 * it shrinks, which opset 13 says with nearest_mode floor or ceil. The scales must therefore be
 * constant, and not grow one dimension while shrinking another under nearest mode.
 */
function liftOldResize(g: GraphIndex, n: NodeProto, from: number): NodeProto {
  const mode = ((attr(n, 'mode') as string | undefined) ?? 'nearest').toLowerCase();
  if (mode !== 'nearest' && mode !== 'linear') refuse(from, n, `mode '${mode}' has no opset-${TARGET} equivalent`);
  let scalesName: string;
  let scales: number[];
  if (n.opType === 'Upsample' && from < 9) {
    scales = (attr(n, 'scales') as number[] | undefined) ?? refuse(from, n, 'it has no scales attribute');
    scalesName = g.fresh(`${n.output![0]}_scales`);
    g.addInit(makeTensor(scalesName, [scales.length], Float32Array.from(scales)));
  } else {
    scalesName = n.input![1];
    const init: TensorProto | undefined = g.inits.get(scalesName);
    if (!init) refuse(from, n, `its scales (${scalesName}) are computed at run time, and its rounding depends on them`);
    scales = Array.from(tensorData(init) as Float32Array);
    if (dims(init).length !== 1) refuse(from, n, `its scales (${scalesName}) are not a 1-D tensor`);
  }
  const attrs: Record<string, string> = { mode, coordinate_transformation_mode: 'asymmetric' };
  if (mode === 'nearest') {
    const grows = scales.some((s) => s > 1);
    const shrinks = scales.some((s) => s < 1);
    if (grows && shrinks) refuse(from, n, `its scales [${scales}] grow one dimension and shrink another, which opset ${TARGET} cannot round the same way`);
    attrs.nearest_mode = shrinks ? 'ceil' : 'floor';
  }
  const lifted = makeNode('Resize', [n.input![0], '', scalesName], [n.output![0]], attrs, n.name ?? undefined);
  lifted.attribute = [...keptAttrs(n, ['mode', 'scales']) ?? [], ...lifted.attribute!];
  return lifted;
}

/** One node rewritten for opset 13, or undefined when it needs nothing. */
export function liftNode(g: GraphIndex, n: NodeProto, from: number): NodeProto | undefined {
  const op = n.opType!;
  if (op === 'Upsample') return liftOldResize(g, n, from);
  if (op === 'Resize' && from < 11) return liftOldResize(g, n, from);
  // Resize 11 and 12 already take (X, roi, scales, sizes) with the same attributes; 13 made
  // roi and scales optional, so the empty tensors old exporters put there become absent inputs.
  if (op === 'Resize') {
    const empty = (name: string | undefined) => !!name && !!g.inits.get(name) && dims(g.inits.get(name)!).reduce((a, b) => a * b, 1) === 0;
    const ins = [...n.input!];
    if (empty(ins[1])) ins[1] = '';
    if (ins.length > 3 && empty(ins[2])) ins[2] = '';
    if (ins.every((v, i) => v === n.input![i])) return undefined;
    return { ...n, input: ins };
  }
  if (op === 'Scatter') {
    // Renamed ScatterElements at opset 11, same inputs and attribute.
    const s = makeNode('ScatterElements', n.input!, n.output!, {}, n.name ?? undefined);
    s.attribute = n.attribute ?? [];
    return s;
  }
  if (op === 'TopK' && from < 10) {
    const k = attr(n, 'k') as number | undefined;
    if (k === undefined) refuse(from, n, 'it has no k attribute');
    const kName = g.fresh(`${n.output![0]}_k`);
    g.addInit(makeTensor(kName, [1], new BigInt64Array([BigInt(k)])));
    const t = makeNode('TopK', [n.input![0], kName], n.output!, {}, n.name ?? undefined);
    t.attribute = keptAttrs(n, ['k']);
    return t;
  }
  return undefined;
}
