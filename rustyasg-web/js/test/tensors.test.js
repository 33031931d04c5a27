import { test } from "node:test";
import assert from "node:assert/strict";
import { InputError, base64Bytes, fromDevice, padded, toDevice, words } from "../src/tensors.js";

const spec = (storage, shape, dtype = "float32") => ({ name: "x", shape, storage, dtype });

test("float32 inputs keep their bits, including inf, nan and -0", () => {
  const src = new Float32Array([0, -0, Infinity, -Infinity, NaN, 1e-45]);
  const bytes = toDevice(spec("f32", [2, 3]), src);
  const back = new Float32Array(bytes.slice().buffer);
  assert.ok(Object.is(back[1], -0));
  assert.equal(back[2], Infinity);
  assert.ok(Number.isNaN(back[4]));
  assert.equal(back[5], src[5]);
  // plain arrays are converted
  assert.deepEqual(Array.from(new Float32Array(toDevice(spec("f32", [2]), [1.5, 2]).slice().buffer)), [1.5, 2]);
});

test("int64 tokens become little-endian (lo, hi) words", () => {
  const bytes = toDevice(spec("i64", [3], "int64"), [5, -1, 2 ** 33]);
  const words32 = new Uint32Array(bytes.slice().buffer);
  assert.deepEqual(Array.from(words32), [5, 0, 0xffffffff, 0xffffffff, 0, 2]);
  const big = toDevice(spec("i64", [1], "int64"), new BigInt64Array([-(2n ** 40n)]));
  assert.equal(new BigInt64Array(big.slice().buffer)[0], -(2n ** 40n));
});

test("bool is one u32 per element; outputs come back as the model's dtypes", () => {
  assert.deepEqual(Array.from(new Uint32Array(toDevice(spec("bool", [3], "bool"), [true, 0, 2]).slice().buffer)), [1, 0, 1]);
  const raw = new Uint8Array(new Uint32Array([1, 0, 1, 99]).buffer);
  assert.deepEqual(Array.from(fromDevice(spec("bool", [3], "bool"), raw)), [1, 0, 1]);
  const f = fromDevice(spec("f32", [2]), new Uint8Array(new Float32Array([3, 4, 5]).buffer));
  assert.ok(f instanceof Float32Array);
  assert.deepEqual(Array.from(f), [3, 4]);
  const i = fromDevice(spec("i64", [1], "int64"), new Uint8Array(new BigInt64Array([-3n]).buffer));
  assert.equal(i[0], -3n);
  assert.equal(fromDevice(spec("f32", [0, 5]), new Uint8Array(0)).length, 0);
});

test("wrong inputs name the input and the expected size", () => {
  assert.throws(() => toDevice(spec("f32", [2, 2]), new Float32Array(3)),
    (e) => e instanceof InputError && e.message === 'input "x": expected 4 elements (shape [2,2] float32), got 3');
  assert.throws(() => toDevice(spec("f32", [1]), "abc"), /expected a typed array or an array of numbers/);
  assert.throws(() => toDevice(spec("f32", [1]), 1), /expected a typed array/);
});

test("padding and base64", () => {
  assert.equal(words(5), 8);
  assert.equal(words(0), 0);
  assert.equal(padded(new Uint8Array(6)).byteLength, 8);
  const four = new Uint8Array(4);
  assert.equal(padded(four), four);
  assert.deepEqual(Array.from(base64Bytes("AQID/w==")), [1, 2, 3, 255]);
});
