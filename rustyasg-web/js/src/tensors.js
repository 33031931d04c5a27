// Host arrays <-> the bytes a tensor has on the device. The exporter's device storages:
// f32 (float32), i32 (int32), i64 (int64 as two 32-bit words, little-endian), bool (one u32
// per element), f16. Pure functions, tested under node --test.

/** Raised for an input the model cannot take; the message names the input and the fix. */
export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

/** Element count of a shape. */
export function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes per element of a device storage. */
export const STORAGE_SIZES = Object.freeze({ f32: 4, f16: 2, i32: 4, i64: 8, bool: 4 });

function isNumberArrayLike(v) {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

/**
 * The device bytes of one input (a typed array or plain array of the right length).
 * @param {{name: string, shape: number[], storage: string, dtype: string}} spec
 * @param {ArrayLike<number>|BigInt64Array} value
 * @returns {Uint8Array}
 * @example
 *   toDevice({name: "x", shape: [2], storage: "f32", dtype: "float32"}, [1, 2])  // 8 bytes
 */
export function toDevice(spec, value) {
  if (!isNumberArrayLike(value) || value instanceof DataView) {
    throw new InputError(`input "${spec.name}": expected a typed array or an array of numbers, got ${Object.prototype.toString.call(value)}`);
  }
  const n = numel(spec.shape);
  if (value.length !== n) {
    throw new InputError(`input "${spec.name}": expected ${n} elements (shape [${spec.shape}] ${spec.dtype}), got ${value.length}`);
  }
  let out;
  switch (spec.storage) {
    case "f32":
      out = value instanceof Float32Array ? value : Float32Array.from(value, Number);
      break;
    case "i32":
      out = value instanceof Int32Array ? value : Int32Array.from(value, (v) => Number(v));
      break;
    case "bool":
      out = Uint32Array.from(value, (v) => (v ? 1 : 0));
      break;
    case "i64":
      out = value instanceof BigInt64Array ? value : BigInt64Array.from(value, (v) => BigInt(Math.trunc(Number(v))));
      break;
    default:
      throw new InputError(`input "${spec.name}": storage ${spec.storage} cannot be written from JavaScript`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * A host typed array from an output's device bytes (copied, so the staging memory may go).
 * float32 -> Float32Array, int32 -> Int32Array, int64 -> BigInt64Array, bool -> Uint8Array.
 */
export function fromDevice(spec, bytes) {
  const n = numel(spec.shape);
  const copy = bytes.slice(0, n * STORAGE_SIZES[spec.storage]);
  switch (spec.storage) {
    case "f32":
      return new Float32Array(copy.buffer, 0, n);
    case "i32":
      return new Int32Array(copy.buffer, 0, n);
    case "i64":
      return new BigInt64Array(copy.buffer, 0, n);
    case "bool":
      return Uint8Array.from(new Uint32Array(copy.buffer, 0, n));
    default:
      throw new InputError(`output "${spec.name}": storage ${spec.storage} cannot be read by this runtime`);
  }
}

/** The byte count rounded up to whole 4-byte words (what writeBuffer and copies need). */
export function words(nbytes) {
  return Math.ceil(nbytes / 4) * 4;
}

/** `bytes` padded with zeros to a multiple of 4 (a view when it already is). */
export function padded(bytes) {
  if (bytes.byteLength % 4 === 0) return bytes;
  const out = new Uint8Array(words(bytes.byteLength));
  out.set(bytes);
  return out;
}

/** Decode base64 (uniform blocks in model.json) in browsers and node alike. */
export function base64Bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
