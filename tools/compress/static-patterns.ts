// Patterns the static quantizer reads off the graph before planning: which tensors are not
// float (never quantized), and the spelled-out LayerNorm chains the engine fuses when only their
// ends are quantized.
import { attr, DataType, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';

/** Tensors that are not float (shape arithmetic, indices, masks): never quantized. */
export function nonFloatTensors(g: GraphIndex): Set<string> {
  const out = new Set<string>();
  for (const [name, t] of g.inits) if (t.dataType !== DataType.FLOAT) out.add(name);
  for (const i of g.graph.input ?? []) {
    const et = i.type?.tensorType?.elemType;
    if (et !== undefined && et !== DataType.FLOAT) out.add(i.name!);
  }
  const INT_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'IsNaN', 'IsInf']);
  const ANY_INPUT = new Set(['Concat', 'Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Range']);
  for (const n of g.graph.node!) {
    const op = n.opType!;
    let nf: boolean;
    if (op === 'Cast') nf = Number(attr(n, 'to')) !== DataType.FLOAT;
    else if (INT_OPS.has(op)) nf = true;
    else if (op === 'Constant') {
      const v = n.attribute?.find((a) => a.name === 'value')?.t;
      nf = !v || v.dataType !== DataType.FLOAT;
    } else if (op === 'ConstantOfShape') {
      const v = n.attribute?.find((a) => a.name === 'value')?.t;
      nf = Boolean(v && v.dataType !== DataType.FLOAT);
    } else if (op === 'Where') nf = out.has(n.input![1]);
    else if (ANY_INPUT.has(op)) nf = (n.input ?? []).some((i) => out.has(i));
    else nf = out.has(n.input?.[0] ?? '');
    if (nf) for (const o of n.output ?? []) if (o) out.add(o);
  }
  return out;
}

export interface LayerNormChain { x: string; out: string; nodes: NodeProto[] }

/**
 * The LayerNorm PyTorch and PaddleOCR export spelled out: ReduceMean(x), Sub(x, mean),
 * Pow(d, 2) (or Mul(d, d)), ReduceMean, Add(eps), Sqrt, Div(d, std), then optionally Mul(gamma)
 * and Add(beta). The engine fuses it when only x and the end are quantized.
 */
export function layerNormChains(g: GraphIndex, isConst: (t: string) => boolean): LayerNormChain[] {
  const chains: LayerNormChain[] = [];
  const only = (t: string, op: string): NodeProto | undefined => {
    const us = g.consumers(t);
    return us.length === 1 && us[0].opType === op && !g.isGraphOutput(t) ? us[0] : undefined;
  };
  for (const mean of g.graph.node!) {
    if (mean.opType !== 'ReduceMean') continue;
    const x = mean.input![0];
    if (!x || isConst(x)) continue;
    const sub = only(mean.output![0], 'Sub');
    if (!sub || sub.input![0] !== x || sub.input![1] !== mean.output![0]) continue;
    const d = sub.output![0];
    const dUsers = g.consumers(d);
    if (g.isGraphOutput(d) || dUsers.length !== 2) continue;
    const sq = dUsers.find((u) => u.opType === 'Pow' || (u.opType === 'Mul' && u.input![0] === d && u.input![1] === d));
    const div = dUsers.find((u) => u.opType === 'Div' && u.input![0] === d);
    if (!sq || !div || sq === div) continue;
    if (sq.opType === 'Pow' && !(isConst(sq.input![1]) && g.inits.has(sq.input![1]) && Number(tensorData(g.inits.get(sq.input![1])!)[0]) === 2)) continue;
    const varMean = only(sq.output![0], 'ReduceMean');
    const addEps = varMean && only(varMean.output![0], 'Add');
    const epsIn = addEps?.input!.find((i) => i !== varMean!.output![0]);
    if (!addEps || !epsIn || !floatInit(g, epsIn)) continue;
    const sqrt = only(addEps.output![0], 'Sqrt');
    if (!sqrt || div.input![1] !== sqrt.output![0] || g.consumers(sqrt.output![0]).length !== 1) continue;
    const nodes = [mean, sub, sq, varMean, addEps, sqrt, div];
    let out = div.output![0];
    const tail = (op: string) => {
      const u = only(out, op);
      const k = u?.input!.find((i) => i !== out);
      if (!u || !k || !floatInit(g, k)) return false;
      nodes.push(u);
      out = u.output![0];
      return true;
    };
    if (tail('Mul')) tail('Add');
    else tail('Add');
    chains.push({ x, out, nodes });
  }
  return chains;
}

export const floatInit = (g: GraphIndex, name: string | undefined) => {
  const t = name ? g.inits.get(name) : undefined;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
};
