import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseSafetensors, SafetensorsError } from "../src/safetensors.js";

/** A safetensors file built by hand from a header object and a data block. */
function file(header, data = new Uint8Array(0)) {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out.buffer;
}

test("reads tensors, shapes and metadata", () => {
  const values = new Float32Array([1.5, -2, 3, 4.25, 0, -0]);
  const ids = new Int32Array([7, -8]);
  const data = new Uint8Array(values.byteLength + ids.byteLength);
  data.set(new Uint8Array(values.buffer), 0);
  data.set(new Uint8Array(ids.buffer), values.byteLength);
  const buf = file({
    __metadata__: { format: "rustyasg-web" },
    w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
    i: { dtype: "I32", shape: [2], data_offsets: [24, 32] },
  }, data);
  const { metadata, tensors } = parseSafetensors(buf);
  assert.deepEqual(metadata, { format: "rustyasg-web" });
  assert.deepEqual(tensors.get("w").shape, [2, 3]);
  const w = tensors.get("w").bytes;
  assert.deepEqual(Array.from(new Float32Array(w.slice().buffer)), [1.5, -2, 3, 4.25, 0, -0]);
  assert.deepEqual(Array.from(new Int32Array(tensors.get("i").bytes.slice().buffer)), [7, -8]);
});

test("empty and 0-d tensors", () => {
  const buf = file({
    e: { dtype: "F32", shape: [0, 4], data_offsets: [0, 0] },
    s: { dtype: "F32", shape: [], data_offsets: [0, 4] },
  }, new Uint8Array(new Float32Array([Infinity]).buffer));
  const { tensors } = parseSafetensors(buf);
  assert.equal(tensors.get("e").bytes.byteLength, 0);
  assert.equal(new Float32Array(tensors.get("s").bytes.slice().buffer)[0], Infinity);
});

test("reads a file written by the Python safetensors package", () => {
  // fixtures/python.safetensors: written by safetensors.numpy.save_file; python.json: its values.
  const expected = JSON.parse(readFileSync(new URL("fixtures/python.json", import.meta.url), "utf8"));
  const b = readFileSync(new URL("fixtures/python.safetensors", import.meta.url));
  const { metadata, tensors } = parseSafetensors(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  assert.deepEqual(metadata, { format: "rustyasg-web" });
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, { shape, values }] of Object.entries(expected)) {
    const got = tensors.get(name);
    assert.deepEqual(got.shape, shape);
    const want = values.map((v) => (v === "inf" ? Infinity : v));
    assert.deepEqual(Array.from(new Float32Array(got.bytes.slice().buffer)), want.map(Math.fround));
  }
});

test("bad files give clear errors", () => {
  assert.throws(() => parseSafetensors(new ArrayBuffer(3)), /shorter than the 8-byte header length/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => parseSafetensors(huge.buffer), /header length 1000 exceeds the file/);
  const notJson = new Uint8Array(12);
  new DataView(notJson.buffer).setBigUint64(0, 4n, true);
  notJson.set([123, 123, 123, 123], 8);
  assert.throws(() => parseSafetensors(notJson.buffer), /header is not JSON/);
  assert.throws(() => parseSafetensors(file({ a: { dtype: "Q7", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1))),
    /tensor a: unknown dtype "Q7"/);
  assert.throws(() => parseSafetensors(file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4))),
    /tensor a: 4 bytes for F32\[2\] \(expected 8\)/);
  assert.throws(() => parseSafetensors(file({ a: { dtype: "F32", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(4))),
    /outside the 4-byte data/);
  assert.throws(() => parseSafetensors(file({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4))),
    SafetensorsError);
});
