// RustyASG web runtime: runs a program exported by `rg.web.export` on navigator.gpu.
//
//   import RustyASG from "./rustyasg.js";
//   const model = await RustyASG.load("./");                  // folder (or model.json URL)
//   const out = await model.run({x: new Float32Array(784)});  // {output: Float32Array}
//
// Everything that can be prepared once is prepared in load(): buffers, weights, pipelines,
// bind groups. run() writes the inputs, records every dispatch into one compute pass, copies
// the outputs into one staging buffer, submits once and awaits one map.

import { parseSafetensors } from "./safetensors.js";
import { InputError, STORAGE_SIZES, base64Bytes, fromDevice, numel, padded, toDevice, words } from "./tensors.js";

export { InputError } from "./tensors.js";
export { parseSafetensors, SafetensorsError } from "./safetensors.js";

export const FORMAT = "rustyasg-web-program";
export const VERSION = 1;

/** Raised when a model cannot be loaded here (no WebGPU, a limit, a bad file); the message says why. */
export class LoadError extends Error {
  constructor(message) {
    super(message);
    this.name = "LoadError";
  }
}

/**
 * Check that a model.json document is a schedule this runtime can replay.
 * Pure (no GPU), so tests run it under node.
 * @returns {Object} the same document
 */
export function checkSchedule(doc) {
  if (!doc || doc.format !== FORMAT) {
    throw new LoadError(`not a RustyASG web export (format ${JSON.stringify(doc && doc.format)}, expected "${FORMAT}")`);
  }
  if (doc.version !== VERSION) {
    throw new LoadError(`export format version ${doc.version}; this runtime reads version ${VERSION} (re-export the model or update the runtime)`);
  }
  const nb = doc.buffers.length;
  const checkBuffer = (b, where) => {
    if (!Number.isInteger(b) || b < 0 || b >= nb) throw new LoadError(`${where}: buffer ${b} is not one of the ${nb} buffers`);
  };
  doc.dispatches.forEach((d, i) => {
    if (!doc.kernels[d.kernel]) throw new LoadError(`dispatch ${i}: kernel ${d.kernel} does not exist`);
    d.bindings.forEach((b) => checkBuffer(typeof b === "object" ? b.buffer : b, `dispatch ${i}`));
    if (d.workgroups.length !== 3) throw new LoadError(`dispatch ${i}: workgroups must be [x, y, z]`);
  });
  doc.copies.forEach((c, i) => { checkBuffer(c.src, `copy ${i}`); checkBuffer(c.dst, `copy ${i}`); });
  for (const t of [...doc.inputs, ...doc.outputs]) if (t.buffer !== null) checkBuffer(t.buffer, `tensor ${t.name}`);
  return doc;
}

/** The device limits to request: the export's, checked against what the adapter offers. */
export function requiredLimits(doc, adapterLimits) {
  const out = {};
  for (const [name, want] of Object.entries(doc.requires?.limits ?? {})) {
    const have = adapterLimits[name];
    if (have === undefined) continue;
    const isAlignment = name.startsWith("min");
    if (isAlignment ? have > want : have < want) {
      throw new LoadError(`this GPU's ${name} is ${have}; the model was exported for ${want}. ` +
        `Re-export it with rg.web.export(..., limits=...) lowered to this device.`);
    }
    out[name] = want;
  }
  return out;
}

async function fetchOk(url, what) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (err) {
    throw new LoadError(`could not fetch ${what} from ${url}: ${err.message}`);
  }
  if (!resp.ok) throw new LoadError(`could not fetch ${what} from ${url}: HTTP ${resp.status}`);
  return resp;
}

async function compilationErrors(module) {
  if (!module.getCompilationInfo) return "";
  const info = await module.getCompilationInfo();
  return info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("\n");
}

/** A loaded model: call `run` as often as needed; `destroy` frees its GPU memory. */
export class Model {
  constructor(device, doc, buffers, dispatches, metadata) {
    this.device = device;
    this.schedule = doc;
    /** Input and output descriptions: [{name, shape, dtype}]. */
    this.inputs = doc.inputs.map(({ name, shape, dtype }) => ({ name, shape, dtype }));
    this.outputs = doc.outputs.map(({ name, shape, dtype }) => ({ name, shape, dtype }));
    /** Whatever the exporter stored in metadata (labels, normalisation...). */
    this.metadata = metadata;
    this._buffers = buffers;
    this._dispatches = dispatches;
    let total = 0;
    this._outputOffsets = doc.outputs.map((o) => {
      const off = total;
      total += words(numel(o.shape) * STORAGE_SIZES[o.storage]);
      return off;
    });
    this._staging = device.createBuffer({ size: Math.max(total, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this._queue = Promise.resolve(); // runs share the staging buffer: one at a time
  }

  /**
   * Run the model once.
   * @param {Object<string, ArrayLike<number>>} inputs typed arrays by input name (flattened, row-major)
   * @returns {Promise<Object<string, Float32Array|Int32Array|BigInt64Array|Uint8Array>>} outputs by name
   */
  run(inputs) {
    const result = this._queue.then(() => this._run(inputs));
    this._queue = result.catch(() => {});
    return result;
  }

  async _run(inputs) {
    if (this._buffers === null) throw new LoadError("model was destroyed");
    if (inputs === null || typeof inputs !== "object") throw new InputError("run() takes an object {inputName: typedArray}");
    const known = new Set(this.schedule.inputs.map((s) => s.name));
    const unknown = Object.keys(inputs).filter((k) => !known.has(k));
    if (unknown.length) throw new InputError(`unknown input(s) ${unknown.join(", ")}; the model takes ${[...known].join(", ")}`);
    const { device } = this;
    for (const spec of this.schedule.inputs) {
      if (!(spec.name in inputs)) throw new InputError(`missing input "${spec.name}" (shape [${spec.shape}] ${spec.dtype})`);
      const bytes = toDevice(spec, inputs[spec.name]);
      if (spec.buffer !== null && bytes.byteLength) device.queue.writeBuffer(this._buffers[spec.buffer], 0, padded(bytes));
    }
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const [pipeline, group, wg] of this._dispatches) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(wg[0], wg[1], wg[2]);
    }
    pass.end();
    for (const c of this.schedule.copies) {
      enc.copyBufferToBuffer(this._buffers[c.src], 0, this._buffers[c.dst], 0, words(c.size));
    }
    this.schedule.outputs.forEach((o, i) => {
      const n = words(numel(o.shape) * STORAGE_SIZES[o.storage]);
      if (n) enc.copyBufferToBuffer(this._buffers[o.buffer], 0, this._staging, this._outputOffsets[i], n);
    });
    device.pushErrorScope("validation");
    device.queue.submit([enc.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new LoadError(`WebGPU rejected the run: ${error.message}`);
    await this._staging.mapAsync(GPUMapMode.READ);
    try {
      const all = new Uint8Array(this._staging.getMappedRange());
      const out = {};
      this.schedule.outputs.forEach((o, i) => {
        out[o.name] = fromDevice(o, all.subarray(this._outputOffsets[i]));
      });
      return out;
    } finally {
      this._staging.unmap();
    }
  }

  /** Free the model's GPU buffers (the device stays usable). */
  destroy() {
    if (this._buffers === null) return;
    for (const b of this._buffers) b.destroy();
    this._staging.destroy();
    this._buffers = null;
  }
}

/**
 * Load an exported model.
 * @param {string|URL} url the export folder (ending in "/") or its model.json
 * @param {{device?: GPUDevice, adapter?: GPURequestAdapterOptions}} [options] reuse a device, or pick an adapter
 * @returns {Promise<Model>}
 */
export async function load(url, options = {}) {
  const base = new URL(url, globalThis.location?.href);
  const jsonUrl = base.pathname.endsWith(".json") ? base : new URL("model.json", base.href.endsWith("/") ? base : base.href + "/");
  const doc = checkSchedule(await (await fetchOk(jsonUrl, "the schedule")).json());
  const weightsPromise = fetchOk(new URL(doc.weights, jsonUrl), "the weights").then((r) => r.arrayBuffer());
  const kernelTexts = Promise.all(doc.kernels.map((k) => fetchOk(new URL(k.file, jsonUrl), `kernel ${k.file}`).then((r) => r.text())));

  let device = options.device;
  if (!device) {
    if (!globalThis.navigator?.gpu) {
      throw new LoadError("this browser has no WebGPU (navigator.gpu is missing); use a recent Chrome, Edge or Safari, " +
        "served over https or from localhost");
    }
    const adapter = await navigator.gpu.requestAdapter(options.adapter);
    if (!adapter) throw new LoadError("navigator.gpu.requestAdapter() found no GPU adapter");
    device = await adapter.requestDevice({ requiredLimits: requiredLimits(doc, adapter.limits) });
  }

  const { tensors } = parseSafetensors(await weightsPromise);
  device.pushErrorScope("validation");
  const buffers = doc.buffers.map((entry, i) => {
    const uniform = entry.role === "uniform";
    const usage = uniform
      ? GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST
      : GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = device.createBuffer({ size: entry.size, usage, label: `${entry.role} ${i}` });
    let bytes = null;
    if (uniform) bytes = base64Bytes(entry.data);
    else if (entry.tensor !== undefined) {
      const t = tensors.get(entry.tensor);
      if (!t) throw new LoadError(`${doc.weights} has no tensor "${entry.tensor}" (buffer ${i})`);
      bytes = t.bytes;
    }
    if (bytes && bytes.byteLength) device.queue.writeBuffer(buffer, 0, padded(bytes));
    return buffer;
  });

  const texts = await kernelTexts;
  const pipelines = await Promise.all(doc.kernels.map(async (k, i) => {
    const module = device.createShaderModule({ code: texts[i], label: k.file });
    const errors = await compilationErrors(module);
    if (errors) throw new LoadError(`${k.file} does not compile on this device:\n${errors}`);
    return device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: k.entry } })
      .catch((err) => { throw new LoadError(`${k.file}: pipeline creation failed: ${err.message}`); });
  }));
  const dispatches = doc.dispatches.map((d) => {
    const pipeline = pipelines[d.kernel];
    const entries = d.bindings.map((b, binding) => (typeof b === "object"
      ? { binding, resource: { buffer: buffers[b.buffer], offset: b.offset, size: b.size } }
      : { binding, resource: { buffer: buffers[b] } }));
    return [pipeline, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: d.label }), d.workgroups];
  });
  const error = await device.popErrorScope();
  if (error) throw new LoadError(`WebGPU rejected the model: ${error.message}`);
  return new Model(device, doc, buffers, dispatches, doc.metadata ?? {});
}

/** The runtime's namespace: `RustyASG.load(url)`. */
export const RustyASG = Object.freeze({ load, Model, LoadError, InputError, checkSchedule, FORMAT, VERSION });
export default RustyASG;
