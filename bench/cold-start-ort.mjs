// The onnxruntime-web peer of bench/cold-start.ts: one whole process that loads an ONNX model,
// reads an .npy batch, runs it once and exits, as a user of onnxruntime-web in Node would.
// Plain JavaScript (no tsx), as our side runs the compiled CLI.
// usage: node bench/cold-start-ort.mjs MODEL.onnx INPUT.npy THREADS
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-web';

const [onnx, input, threads] = process.argv.slice(2);
ort.env.wasm.numThreads = Number(threads);
const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });

// .npy version 1.x, little-endian float32, C order: magic (6) + version (2) + header length (2) + header.
const bytes = readFileSync(input);
const hlen = bytes.readUInt16LE(8);
const header = bytes.subarray(10, 10 + hlen).toString('latin1');
if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error(`${input}: expected little-endian float32 in C order`);
const shape = header
  .match(/'shape': \(([^)]*)\)/)[1]
  .split(',')
  .filter((s) => s.trim())
  .map(Number);
const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + hlen, bytes.byteOffset + bytes.length));

const t0 = performance.now();
const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
const y = out[session.outputNames[0]];
process.stderr.write(`onnxruntime-web: output [${y.dims.join(', ')}] in ${(performance.now() - t0).toFixed(0)} ms\n`);
process.exit(0);
