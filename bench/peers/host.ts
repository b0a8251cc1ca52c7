// Worker-thread host for one JavaScript peer and one case (started by clients.ts through
// worker.mjs). A worker per peer keeps the libraries apart (tfjs's global backend, two
// onnxruntime builds), frees all their memory when terminated, and lets the harness stop a
// peer that runs past its time cap. Timing is taken here, around the call only.
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import path from 'node:path';
import { errorMessage, fillRandom, timeCall, targetsFor, type HostInit, type HostReply, type HostRequest, type PeerInfo } from './common.js';
import type * as tfTypes from '@tensorflow/tfjs';
import { buildTfjsModel, trainableParams } from './tfjs_models.js';
import { installNodeGpu } from './node-gpu.js';

// In a worker thread (CPU peers) or a child process started with fork (tfjs-webgpu: see clients.ts)
const init: HostInit = parentPort
  ? (workerData as HostInit)
  : await new Promise<HostInit>((resolve) => process.once('message', (m) => resolve((m as { init: HostInit }).init)));
const port = parentPort ?? {
  postMessage: (r: HostReply) => process.send!(r),
  on: (ev: 'message', fn: (m: HostRequest) => void) => void process.on(ev, (m) => fn(m as HostRequest)),
};
const send = (r: HostReply) => port.postMessage(r);

// Libraries print hints on stdout (tfjs: "Hi there 👋 ..."); stdout belongs to the harness's JSON lines.
console.log = (...a: unknown[]) => console.error(...a);
console.info = console.log;

type Runner = { run: () => Promise<void> | void; close: () => Promise<void> | void; info: PeerInfo };

async function setupOrt(): Promise<Runner> {
  const { spec } = init;
  if (spec.kind !== 'infer') throw new Error('onnxruntime has no training in JavaScript');
  if (!init.onnxPath) throw new Error('no ONNX file');
  const web = init.peer === 'onnxruntime-web';
  const ort = (web ? await import('onnxruntime-web') : await import('onnxruntime-node')) as typeof import('onnxruntime-web');
  let opts: Record<string, unknown>;
  if (web) {
    ort.env.wasm.numThreads = init.threads;
    opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  } else {
    opts = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: init.threads, interOpNumThreads: 1, executionMode: 'sequential' };
  }
  const session = await ort.InferenceSession.create(init.onnxPath, opts);
  const shape = [spec.batch, spec.channels, spec.size, spec.size];
  const data = fillRandom(new Float32Array(shape.reduce((a, b) => a * b)));
  const inName = session.inputNames[0],
    outName = session.outputNames[0];
  const versions = ort.env.versions as Record<string, string | undefined>;
  return {
    info: {
      version: versions[web ? 'web' : 'node'] ?? versions.common,
      threads: web ? ort.env.wasm.numThreads : init.threads,
      batch: spec.batch,
      ...(web ? { simd: true } : {}),
      executionProviders: opts.executionProviders,
    },
    run: async () => {
      const out = await session.run({ [inName]: new ort.Tensor('float32', data, shape) });
      const y = out[outName];
      if (y.dims[0] !== spec.batch || y.dims[1] !== spec.classes) throw new Error(`onnxruntime output has shape [${y.dims.join(', ')}]`);
      y.dispose?.();
    },
    close: () => session.release(),
  };
}

async function setupTfjs(): Promise<Runner> {
  const tf = await import('@tensorflow/tfjs');
  let threads = 1;
  let threadNote: string | undefined;
  let adapter: string | undefined;
  if (init.peer === 'tfjs-wasm') {
    const w = await import('@tensorflow/tfjs-backend-wasm');
    const req = createRequire(import.meta.url);
    w.setWasmPaths(path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
    w.setThreadsCount(init.threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
    threads = w.getThreadsCount();
    if (threads !== init.threads) {
      threadNote = `asked for ${init.threads} threads; tfjs-backend-wasm reports WASM_HAS_MULTITHREAD_SUPPORT=${tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT')} in Node, so it runs ${threads}`;
    }
  } else if (init.peer === 'tfjs-webgpu') {
    adapter = await installNodeGpu();
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs webgpu backend failed to initialise');
  } else {
    if (!(await tf.setBackend('cpu'))) throw new Error('tfjs cpu backend failed to initialise');
  }
  await tf.ready();
  const { spec } = init;
  const version = tf.version.tfjs;
  // tfjs-webgpu reads values back asynchronously (tfjs warns against dataSync there); either way
  // the timed call ends when the result is on the host
  const read = async (t: tfTypes.Tensor) => {
    if (adapter) await t.data();
    else t.dataSync();
  };
  if (spec.kind === 'gemm') {
    const a = tf.tensor2d(fillRandom(new Float32Array(spec.n * spec.n), 1), [spec.n, spec.n]);
    const b = tf.tensor2d(fillRandom(new Float32Array(spec.n * spec.n), 2), [spec.n, spec.n]);
    return {
      info: { version, threads, threadNote, adapter },
      run: async () => {
        const c = tf.matMul(a, b);
        await read(c);
        c.dispose();
      },
      close: () => {
        a.dispose();
        b.dispose();
      },
    };
  }
  const model = buildTfjsModel(tf, spec.model, spec.size, spec.channels, spec.classes);
  const params = trainableParams(model);
  if (init.expectParams !== undefined && params !== init.expectParams) {
    throw new Error(`tfjs ${spec.model} has ${params} trainable parameters, ours has ${init.expectParams}`);
  }
  const x = tf.tensor4d(fillRandom(new Float32Array(spec.batch * spec.size * spec.size * spec.channels)), [spec.batch, spec.size, spec.size, spec.channels]);
  const info: PeerInfo = { version, threads, batch: spec.batch, params, layout: 'NHWC', threadNote, adapter };
  if (spec.kind === 'infer') {
    return {
      info,
      run: async () => {
        const y = model.predict(x) as tfTypes.Tensor;
        await read(y);
        y.dispose();
      },
      close: () => {
        x.dispose();
        model.dispose();
      },
    };
  }
  const labels = tf.oneHot(tf.tensor1d(targetsFor(spec.batch, spec.classes), 'int32'), spec.classes);
  const opt = tf.train.momentum(spec.lr, spec.momentum);
  return {
    info: { ...info, optimizer: `tf.train.momentum(${spec.lr}, ${spec.momentum})` },
    run: async () => {
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tfTypes.Tensor) as tfTypes.Scalar, true);
      await read(cost!);
      cost!.dispose();
    },
    close: () => {
      x.dispose();
      labels.dispose();
      opt.dispose();
      model.dispose();
    },
  };
}

let runner: Runner;
try {
  runner = init.peer.startsWith('onnxruntime') ? await setupOrt() : await setupTfjs();
  send({ type: 'ready', info: runner.info });
} catch (e) {
  send({ type: 'error', message: errorMessage(e) });
  process.exit(0);
}

port.on('message', async (m: HostRequest) => {
  if (m.cmd === 'close') {
    try {
      await runner.close();
    } catch {
      /* the worker is terminated next anyway */
    }
    send({ type: 'closed' });
    return;
  }
  try {
    const t = await timeCall(() => runner.run());
    send({ type: 'ms', ms: t.ms, cpuMs: t.cpuMs! });
  } catch (e) {
    send({ type: 'error', message: errorMessage(e) });
  }
});
