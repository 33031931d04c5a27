import { test } from "node:test";
import assert from "node:assert/strict";
import { LoadError, checkSchedule, requiredLimits } from "../src/rustyasg.js";

const doc = () => ({
  format: "rustyasg-web-program", version: 1,
  requires: { features: [], limits: { maxStorageBuffersPerShaderStage: 8 } },
  inputs: [{ name: "x", shape: [4], dtype: "float32", storage: "f32", buffer: 0 }],
  outputs: [{ name: "y", shape: [4], dtype: "float32", storage: "f32", buffer: 1 }],
  buffers: [{ size: 256, role: "input" }, { size: 256, role: "temporary" }, { size: 16, role: "uniform", data: "" }],
  kernels: [{ file: "kernels/0000.wgsl", entry: "main" }],
  dispatches: [{ kernel: 0, bindings: [0, 1, 2], workgroups: [1, 1, 1] }],
  copies: [],
});

test("a well-formed schedule passes", () => {
  assert.equal(checkSchedule(doc()).version, 1);
});

test("malformed schedules are rejected with the reason", () => {
  assert.throws(() => checkSchedule({ format: "onnx" }), /not a RustyASG web export/);
  assert.throws(() => checkSchedule({ ...doc(), version: 99 }), /version 99; this runtime reads version 1/);
  const badKernel = doc(); badKernel.dispatches[0].kernel = 3;
  assert.throws(() => checkSchedule(badKernel), /dispatch 0: kernel 3 does not exist/);
  const badBuffer = doc(); badBuffer.dispatches[0].bindings[1] = 7;
  assert.throws(() => checkSchedule(badBuffer), (e) => e instanceof LoadError && /buffer 7 is not one of the 3 buffers/.test(e.message));
  const badOut = doc(); badOut.outputs[0].buffer = -1;
  assert.throws(() => checkSchedule(badOut), /tensor y: buffer -1/);
});

test("device limits: the export's, or an error when the GPU offers less", () => {
  assert.deepEqual(requiredLimits(doc(), { maxStorageBuffersPerShaderStage: 10 }), { maxStorageBuffersPerShaderStage: 8 });
  assert.throws(() => requiredLimits(doc(), { maxStorageBuffersPerShaderStage: 4 }),
    /maxStorageBuffersPerShaderStage is 4; the model was exported for 8/);
});
