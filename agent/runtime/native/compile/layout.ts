// Layouts and views: feature maps live as NHWC; Reshape/Flatten/Squeeze... are views of the same
// bytes where the layout allows, and a transpose step where it does not. A flatten of an NHWC
// map feeding a Gemm stays 'flat-hwc' so the Gemm permutes its weights instead of the data.
// There is no kernel family for this: a transpose is a byte move done by the engine step itself.
import { attr } from '../../../onnx/model.js';
import type { Compiler } from './compiler.js';
import { ints, numel, qdtype, type Layout, type QTensor } from './values.js';

function transpose(c: Compiler, q: QTensor, perm: number[], storage: number[]): number {
  if (q.bits === 16) {
    // u16 (W8A16) as bytes: one more, innermost, dimension of 2 that stays in place.
    const bytes = c.tensor('u8', [...c.tensors[q.tensor].shape, 2], q.tensor);
    const out = c.tensor('u8', [...storage, 2]);
    c.ops.push({ op: 'transpose', input: bytes, output: out, perm: [...perm, perm.length] });
    return c.tensor('u16', storage, out);
  }
  const out = c.tensor('u8', storage);
  c.ops.push({ op: 'transpose', input: q.tensor, output: out, perm });
  return out;
}

/** The tensor in NCHW (ONNX) storage order. */
export function toPlain(c: Compiler, q: QTensor): QTensor {
  if (q.layout === 'plain') return q;
  if (q.layout === 'nhwc') {
    const [n, ch, h, w] = q.shape;
    if (h * w === 1) return { ...q, tensor: c.tensor(qdtype(q), q.shape, q.tensor), layout: 'plain' };
    return { ...q, tensor: transpose(c, q, [0, 3, 1, 2], [n, ch, h, w]), layout: 'plain' };
  }
  const [ch, h, w] = q.chw!;
  const n = numel(q.shape) / (ch * h * w);
  const as4d = c.tensor(qdtype(q), [n, h, w, ch], q.tensor);
  const t = transpose(c, { ...q, tensor: as4d }, [0, 3, 1, 2], [n, ch, h, w]);
  return { ...q, tensor: c.tensor(qdtype(q), q.shape, t), shape: q.shape, layout: 'plain', chw: undefined };
}

/** A 4D map in NHWC storage, for convolution and pooling. */
export function toNhwc(c: Compiler, q: QTensor): QTensor {
  if (q.shape.length !== 4) throw c.bad(`expects a 4D NCHW input, got shape [${q.shape}]`);
  if (q.layout === 'nhwc') return q;
  const p = toPlain(c, q);
  const [n, ch, h, w] = p.shape;
  return { ...p, tensor: transpose(c, p, [0, 2, 3, 1], [n, h, w, ch]), layout: 'nhwc' };
}

/** A reshape (Reshape, Flatten, Squeeze...) as a view; NHWC maps stay NHWC where the consumer allows. */
function view(c: Compiler, q: QTensor, shape: number[]): QTensor {
  if (numel(shape) !== numel(q.shape)) throw c.bad(`reshape from [${q.shape}] to [${shape}] changes the element count`);
  const same = shape.length === q.shape.length && shape.every((d, i) => d === q.shape[i]);
  if (same) return q;
  if (q.layout === 'nhwc') {
    const [n, ch, h, w] = q.shape;
    if (h * w === 1) return { ...q, tensor: c.tensor(qdtype(q), shape, q.tensor), shape, layout: 'plain' };
    if (shape.length === 2 && shape[0] === n) {
      return { ...q, tensor: c.tensor(qdtype(q), [n, h * w * ch], q.tensor), shape, layout: 'flat-hwc', chw: [ch, h, w] };
    }
  }
  const p = toPlain(c, q);
  return { ...p, tensor: c.tensor(qdtype(p), shape, p.tensor), shape, layout: 'plain' };
}

/** Storage dimensions of a logical (ONNX) shape in this layout. */
export function storageShape(shape: number[], layout: Layout): number[] {
  if (layout === 'nhwc') return [shape[0], shape[2], shape[3], shape[1]];
  if (layout === 'flat-hwc') return [shape[0], numel(shape) / shape[0]];
  return shape;
}

/** Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout. */
export function reshape(c: Compiler): void {
  const n = c.node;
  const x = c.input(0)!;
  const shapeOf = (s: number[]): number[] => {
    switch (n.opType) {
      case 'Reshape': {
        const spec = Array.from(c.constValue(1, 'Reshape shape').data as BigInt64Array, Number);
        const out = spec.map((d, i) => (d === 0 ? s[i] : d));
        const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
        return out.map((d) => (d === -1 ? numel(s) / known : d));
      }
      case 'Flatten': {
        let axis = Number(attr(n, 'axis') ?? 1);
        if (axis < 0) axis += s.length;
        return [numel(s.slice(0, axis)), numel(s.slice(axis))];
      }
      case 'Squeeze': {
        const axes = (n.input?.[1] ? Array.from(c.constValue(1, 'Squeeze axes').data as BigInt64Array, Number) : ints(attr(n, 'axes'), []))
          .map((a) => (a < 0 ? a + s.length : a));
        return s.filter((d, i) => (axes.length ? !axes.includes(i) : d !== 1));
      }
      case 'Unsqueeze': {
        const axes = (n.input?.[1] ? Array.from(c.constValue(1, 'Unsqueeze axes').data as BigInt64Array, Number) : ints(attr(n, 'axes'), []));
        const r = s.length + axes.length;
        const norm = axes.map((a) => (a < 0 ? a + r : a));
        const out: number[] = []; let j = 0;
        for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : s[j++]);
        return out;
      }
      default: return s;
    }
  };
  if (x.k === 'q') return c.set({ k: 'q', q: view(c, x.q, shapeOf(x.q.shape)) });
  if (x.k === 'dq') return c.set({ k: 'dq', d: { ...x.d, q: view(c, x.d.q, shapeOf(x.d.q.shape)) } });
  if (x.k === 'f') {
    const shape = shapeOf(x.shape);
    return c.set({ k: 'f', tensor: c.tensor('f32', shape, x.tensor), shape });
  }
  if (x.k === 'const') return c.set({ k: 'const', c: { ...x.c, shape: shapeOf(x.c.shape) } });
  if (x.k === 'cdq') return c.set({ k: 'cdq', c: { ...x.c, shape: shapeOf(x.c.shape) } });
  throw c.bad('reshaping a float result that is not quantized is not supported');
}
