// The MNIST drawing demo: a canvas, MNIST-style preprocessing, and the exported CNN on WebGPU.
import RustyASG from "./rustyasg.js";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const status = document.getElementById("status");
const prediction = document.getElementById("prediction");
const bars = document.getElementById("bars");

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  prediction.textContent = "";
  prediction.dataset.class = "";
}

/**
 * The drawing as MNIST's preprocessing made its digits: the ink's bounding box scaled to fit
 * 20x20 (aspect kept), placed in 28x28 so that its centre of mass is at the centre.
 * Returns 784 values in [0, 1], or null for an empty canvas.
 */
export function mnistPixels(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (rgba[4 * (y * width + x)] > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, scale = 20 / Math.max(bw, bh);
  const w = Math.max(1, Math.round(bw * scale)), h = Math.max(1, Math.round(bh * scale));
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const sctx = small.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(canvas, x0, y0, bw, bh, 0, 0, w, h);
  const box = sctx.getImageData(0, 0, w, h).data;
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = box[4 * (y * w + x)] / 255;
    mass += v; mx += v * x; my += v * y;
  }
  const ox = Math.round(14 - (mass ? mx / mass : w / 2) - 0.5), oy = Math.round(14 - (mass ? my / mass : h / 2) - 0.5);
  const out = new Float32Array(28 * 28);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const tx = x + ox, ty = y + oy;
    if (tx >= 0 && tx < 28 && ty >= 0 && ty < 28) out[ty * 28 + tx] = box[4 * (y * w + x)] / 255;
  }
  return out;
}

function showProbabilities(probs, labels) {
  bars.replaceChildren();
  probs.forEach((p, i) => {
    const label = document.createElement("span"); label.textContent = labels[i];
    const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = `${(100 * p).toFixed(1)}%`;
    const value = document.createElement("span"); value.textContent = `${(100 * p).toFixed(1)}%`;
    bars.append(label, bar, value);
  });
}

const model = await RustyASG.load("./");
const { mean, std, labels } = model.metadata;
status.textContent = "draw a digit with the mouse; the CNN runs on your GPU through WebGPU";
clearPad();

async function classify() {
  const pixels = mnistPixels(pad);
  if (!pixels) return;
  const x = pixels.map((v) => (v - mean) / std);
  const { probabilities } = await model.run({ x });
  let best = 0;
  probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
  window.rustyasgDemo.last = probabilities;
  prediction.textContent = labels[best];
  prediction.dataset.class = String(best);
  showProbabilities(Array.from(probabilities), labels);
  document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
}

let drawing = false;
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(e.offsetX, e.offsetY); ctx.lineTo(e.offsetX + 0.01, e.offsetY); ctx.stroke();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineTo(e.offsetX, e.offsetY); ctx.stroke();
});
for (const ev of ["pointerup", "pointerleave"]) {
  pad.addEventListener(ev, () => { if (drawing) { drawing = false; classify(); } });
}
document.getElementById("clear").addEventListener("click", clearPad);
window.rustyasgDemo = { model, classify, mnistPixels: () => mnistPixels(pad) };
document.body.dataset.ready = "1";
