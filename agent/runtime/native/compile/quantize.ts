// The quantize family: QuantizeLinear and DequantizeLinear, and the float/int8 conversions at
// the graph's edges. A 4D float input is quantized straight into NHWC (one transpose, fused into
// the quantize step); a quantized output is dequantized back to NCHW the same way.
import { attr, DataType } from '../../../onnx/model.js';
import { signFlipTable } from '../quant.js';
import type { Compiler } from './compiler.js';
import { storageShape, toPlain } from './layout.js';
import { lut, requantize } from './lut.js';
import { kindName, type Layout, type Value } from './values.js';
import { floatConcatOutput } from './float-output.js';

export function quantizeLinear(c: Compiler): void {
  const x = c.input(0)!;
  if ((c.node.input?.[1] && (c.constValue(1, 'scale').data.length !== 1))) throw c.bad('per-axis quantization of activations is not supported');
  const { scale, zp, signed, bits } = c.qparams(1, 2, true);
  if (x.k === 'f') {
    const four = x.shape.length === 4;
    const layout: Layout = four ? 'nhwc' : 'plain';
    const out = c.tensor(bits === 16 ? 'u16' : 'u8', storageShape(x.shape, layout));
    c.ops.push({ op: 'quantize', input: x.tensor, output: out, scale, zeroPoint: zp, nchwToNhwc: four });
    return c.set({ k: 'q', q: { tensor: out, shape: x.shape, layout, signed, ...(bits === 16 ? { bits } : {}) } });
  }
  if (x.k === 'pending') return c.set({ k: 'q', q: c.emit(x.p, scale, zp, signed, bits) });
  if (x.k === 'dq') {
    if (bits !== (x.d.q.bits ?? 8)) throw c.bad(`requantizes a ${x.d.q.bits ?? 8}-bit activation to ${bits} bits (the engine keeps one width per tensor)`);
    return c.set({ k: 'q', q: requantize(c, x.d, scale, zp, signed) });
  }
  throw c.bad('quantizing a constant at run time is not supported (fold it into an initializer)');
}

export function dequantizeLinear(c: Compiler): void {
  const x = c.input(0)!;
  if (x.k === 'q') {
    if (c.constValue(1, 'scale').data.length !== 1) throw c.bad('per-axis dequantization of activations is not supported');
    const { scale, zp, bits } = c.qparams(1, 2, true);
    if (bits !== (x.q.bits ?? 8)) throw c.bad(`its ${bits}-bit zero point does not fit the ${x.q.bits ?? 8}-bit tensor it reads`);
    return c.set({ k: 'dq', d: { q: x.q, scale, zp } });
  }
  if (x.k === 'const') {
    if (x.c.dtype === DataType.INT16) throw c.bad('int16 constants are not computed by the native engine (uint16 ones are); ONNX Runtime runs them');
    const axis = Number(attr(c.node, 'axis') ?? 1);
    return c.set({ k: 'cdq', c: c.constDeq(x.c, 1, 2, axis) });
  }
  throw c.bad(`input must be a quantized tensor or an initializer (got ${kindName(x)})`);
}

/** A graph output in ONNX order and type: dequantized to float, or int8 flipped back from u8 storage. */
export function graphOutput(c: Compiler, name: string, v: Value): { tensor: number; dtype: 'float32' | 'uint8' | 'int8'; shape: number[] } {
  if (v.k === 'dq') {
    const src = v.d.q.layout === 'flat-hwc' ? toPlain(c, v.d.q) : v.d.q;
    const tensor = c.tensor('f32', src.shape);
    c.ops.push({ op: 'dequantize', input: src.tensor, output: tensor, scale: v.d.scale, zeroPoint: v.d.zp, nhwcToNchw: src.layout === 'nhwc' });
    return { tensor, dtype: 'float32', shape: src.shape };
  }
  if (v.k === 'q') {
    if (v.q.bits === 16) throw c.bad(`output ${name} is a 16-bit tensor; the engine gives float32, uint8 or int8 outputs (dequantize it)`);
    let q = toPlain(c, v.q);
    if (q.signed) q = lut(c, q, signFlipTable(), false, 's8');
    return { tensor: q.tensor, shape: q.shape, dtype: v.q.signed ? 'int8' : 'uint8' };
  }
  if (v.k === 'f') return { tensor: v.tensor, shape: v.shape, dtype: 'float32' };
  if (v.k === 'pending' && v.p.node.opType === 'Concat') return floatConcatOutput(c, v.p.node);
  throw c.bad(`output ${name} is ${v.k === 'pending' ? 'a float result that is never quantized' : 'a constant'}`);
}
