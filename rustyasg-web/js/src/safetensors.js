// Reading the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
// tensors' bytes. Pure functions on an ArrayBuffer, so node --test checks them without a GPU.

/** Bytes per element of each safetensors dtype this runtime reads. */
export const DTYPE_SIZES = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
});

/** Raised when a file is not valid safetensors; the message says what is wrong. */
export class SafetensorsError extends Error {
  constructor(message) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/**
 * Parse a safetensors file.
 * @param {ArrayBuffer} buffer the whole file
 * @returns {{metadata: Object, tensors: Map<string, {dtype: string, shape: number[], bytes: Uint8Array}>}}
 * @example
 *   const {tensors} = parseSafetensors(await (await fetch("weights.safetensors")).arrayBuffer());
 *   tensors.get("fc.weight").shape   // [10, 64]
 */
export function parseSafetensors(buffer) {
  if (!(buffer instanceof ArrayBuffer)) throw new SafetensorsError("expected an ArrayBuffer");
  if (buffer.byteLength < 8) throw new SafetensorsError(`file of ${buffer.byteLength} bytes is shorter than the 8-byte header length`);
  const headerLength = new DataView(buffer).getBigUint64(0, true);
  if (headerLength > BigInt(buffer.byteLength - 8)) {
    throw new SafetensorsError(`header length ${headerLength} exceeds the file (${buffer.byteLength} bytes)`);
  }
  const n = Number(headerLength);
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  } catch (err) {
    throw new SafetensorsError(`header is not JSON: ${err.message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafetensorsError("header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLength = buffer.byteLength - dataStart;
  const tensors = new Map();
  let metadata = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info ?? {};
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = info ?? {};
    const size = DTYPE_SIZES[dtype];
    if (size === undefined) throw new SafetensorsError(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !(offsets[0] <= offsets[1]) || offsets[1] > dataLength) {
      throw new SafetensorsError(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} outside the ${dataLength}-byte data`);
    }
    const expected = shape.reduce((a, b) => a * b, 1) * size;
    if (offsets[1] - offsets[0] !== expected) {
      throw new SafetensorsError(`tensor ${name}: ${offsets[1] - offsets[0]} bytes for ${dtype}${JSON.stringify(shape)} (expected ${expected})`);
    }
    tensors.set(name, { dtype, shape, bytes: new Uint8Array(buffer, dataStart + offsets[0], expected) });
  }
  return { metadata, tensors };
}
