// Hostile and malformed ONNX files: absurd or overflowing dimensions, payloads shorter than their
// declared shape, external data, deep protobuf nesting, graphs that are not ResNets (extra ops,
// cycles, custom domains), truncation and random bytes. Each must give a one-line FormatError
// within a second and without allocating what the header declares; then fast-check fuzzes the
// importer with random and mutated bytes for a bounded number of runs.
/* eslint-disable @typescript-eslint/no-explicit-any -- the tests edit decoded protobuf messages in place */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FormatError } from '../src/base/errors.js';
import { exportOnnx } from '../src/convert/onnx-export.js';
import { parseOnnx } from '../src/io/onnx-graph.js';
import { importOnnx } from '../src/convert/onnx-import.js';
import { onnxType } from '../src/io/onnx-schema.js';
import { createModel } from '../src/models/registry.js';
import { applyMutations, mutationArb } from './onnx-mutate.js';
import { noGrad } from '../src/tensor/tensor.js';

const TIME_LIMIT_MS = 1000;
const MEM_LIMIT = 256 * 2 ** 20;

const base = exportOnnx(noGrad(() => createModel('cifar_resnet20')).eval(), { inputShape: [3, 32, 32] });
const T = onnxType('ModelProto');

/** Decode the valid base model, let `edit` change it, encode again. */
function edited(edit: (m: any) => void): Uint8Array {
  const m = T.decode(base) as any;
  edit(m);
  return T.encode(m).finish();
}

/** importOnnx must throw a one-line FormatError matching `re`, quickly and without a memory blow-up. */
function rejects(bytes: Uint8Array, re: RegExp, what: string): void {
  const mem0 = process.memoryUsage();
  const t0 = performance.now();
  let err: unknown;
  try {
    importOnnx(bytes);
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  const mem1 = process.memoryUsage();
  assert.ok(err instanceof FormatError, `${what}: expected a FormatError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.match((err as Error).message, re, what);
  assert.ok(!(err as Error).message.includes('\n'), `${what}: message is not one line`);
  assert.ok(ms < TIME_LIMIT_MS, `${what}: took ${ms.toFixed(0)} ms`);
  const grew = Math.max(mem1.rss - mem0.rss, mem1.arrayBuffers - mem0.arrayBuffers);
  assert.ok(grew < MEM_LIMIT, `${what}: memory grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
}

test('the unmodified base file imports (so the cases below fail for the reason they name)', () => {
  assert.equal(importOnnx(base).arch.model, 'cifar_resnet20');
});

test('initializers with absurd, overflowing or negative dimensions are rejected before allocation', () => {
  rejects(
    edited((m) => {
      m.graph.initializer[0].dims = ['1099511627776', '1099511627776'];
    }),
    /too large|elements/,
    'dims 2^40 x 2^40',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].dims = ['4611686018427387904'];
    }),
    /invalid dimension/,
    'dim 2^62',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].dims = ['-3', '4'];
    }),
    /invalid dimension/,
    'negative dim',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].dims = [1 << 20, 1 << 10];
    }),
    /over the limit|needs/,
    '2^30 elements declared over a small payload',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].dims = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    }),
    /dimensions/,
    'rank 9',
  );
});

test('payloads shorter or longer than the declared shape, external data and unsupported types are rejected', () => {
  rejects(
    edited((m) => {
      m.graph.initializer[0].rawData = m.graph.initializer[0].rawData.subarray(0, 100);
    }),
    /needs \d+ bytes of F32, raw_data has 100/,
    'short raw_data',
  );
  rejects(
    edited((m) => {
      const t = m.graph.initializer[0];
      t.rawData = new Uint8Array(0);
      t.dims = [100_000_000];
      t.floatData = [1, 2, 3];
    }),
    /needs 100000000 values, float_data has 3/,
    'float_data shorter than dims',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].externalData = [{ key: 'location', value: '/etc/passwd' }];
      m.graph.initializer[0].dataLocation = 1;
    }),
    /external tensor data is not supported/,
    'external data',
  );
  rejects(
    edited((m) => {
      m.graph.initializer[0].dataType = 8;
    }),
    /unsupported data type 8/,
    'string tensor',
  );
  rejects(
    edited((m) => {
      m.graph.initializer.push(m.graph.initializer[0]);
    }),
    /defined twice/,
    'duplicate initializer',
  );
});

test('bytes that are not an ONNX model: empty, random, text, truncated, deeply nested groups', () => {
  rejects(new Uint8Array(0), /empty file/, 'empty');
  rejects(new TextEncoder().encode('{"not": "onnx"}'), /onnx:/, 'JSON text');
  rejects(base.subarray(0, Math.floor(base.length * 0.6)), /onnx:/, 'truncated at 60%');
  const nest = new Uint8Array(400_000);
  for (let i = 0; i < nest.length; i += 2) {
    nest[i] = 0x9b; // field 99, wire type 3 (start group), unknown to the schema
    nest[i + 1] = 0x06;
  }
  rejects(nest, /onnx:/, '200,000 nested groups');
  const huge = new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x07]); // graph field claiming 2 GiB
  rejects(huge, /not a valid ONNX protobuf/, 'length prefix past the end');
});

test('graphs that are not ResNets name the node they cannot map', () => {
  rejects(
    edited((m) => {
      const g = m.graph;
      const last = g.node[g.node.length - 1];
      last.output = ['pre_softmax'];
      g.node.push({ input: ['pre_softmax'], output: [g.output[0].name], name: 'sm', opType: 'Softmax', attribute: [] });
    }),
    /Softmax/,
    'Softmax after the classifier',
  );
  rejects(
    edited((m) => {
      const relu = m.graph.node.find((n: any) => n.opType === 'Relu');
      relu.opType = 'Sigmoid';
    }),
    /Sigmoid/,
    'Sigmoid instead of Relu',
  );
  rejects(
    edited((m) => {
      const add = m.graph.node.find((n: any) => n.opType === 'Add');
      add.input[1] = add.output[0]; // a cycle
    }),
    /onnx:/,
    'cycle through an Add',
  );
  rejects(
    edited((m) => {
      m.graph.node[0].domain = 'com.evil';
    }),
    /outside the standard domain/,
    'custom domain',
  );
  rejects(
    edited((m) => {
      const conv = m.graph.node.find((n: any) => n.opType === 'Conv');
      conv.attribute.find((a: any) => a.name === 'pads').ints = [1, 1, 0, 0];
    }),
    /asymmetric pads/,
    'asymmetric pads',
  );
  rejects(
    edited((m) => {
      const conv = m.graph.node.filter((n: any) => n.opType === 'Conv')[3];
      conv.attribute.find((a: any) => a.name === 'strides').ints = [2, 2];
    }),
    /stride|Slice|shortcut|do not fit|Conv/,
    'a stride where the model has none',
  );
  rejects(
    edited((m) => {
      m.graph.input.push({ name: 'second', type: m.graph.input[0].type });
    }),
    /one image input/,
    'two inputs',
  );
});

test('limits on node and initializer counts', () => {
  assert.throws(
    () => importOnnx(base, { limits: { maxNodes: 10 } }),
    (e: unknown) => e instanceof FormatError && /nodes, over the limit of 10/.test(e.message),
  );
  assert.throws(
    () => importOnnx(base, { limits: { maxTotalElements: 1000 } }),
    (e: unknown) => e instanceof FormatError && /more than 1000 elements/.test(e.message),
  );
});

test('an absurd declared input shape allocates nothing (the importer never sizes buffers from it)', () => {
  const bytes = edited((m) => {
    m.graph.input[0].type.tensorType.shape.dim = [
      { dimValue: '1125899906842624' },
      { dimValue: 3 },
      { dimValue: '1125899906842624' },
      { dimValue: '1125899906842624' },
    ];
  });
  const t0 = performance.now();
  assert.equal(importOnnx(bytes).arch.model, 'cifar_resnet20');
  assert.ok(performance.now() - t0 < TIME_LIMIT_MS);
  assert.deepEqual(parseOnnx(bytes).input.dims, [2 ** 50, 3, 2 ** 50, 2 ** 50]);
});

/** importOnnx may succeed or throw a FormatError; nothing else, and never slowly. */
function typedOrValue(b: Uint8Array): boolean {
  const t0 = performance.now();
  try {
    importOnnx(b);
  } catch (e) {
    if (!(e instanceof FormatError)) throw new Error(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a FormatError`, { cause: e });
    if (e.message.includes('\n')) throw new Error(`multi-line message: ${e.message}`, { cause: e });
  }
  const ms = performance.now() - t0;
  if (ms > TIME_LIMIT_MS) throw new Error(`took ${ms.toFixed(0)} ms`);
  return true;
}

test('fuzz: random bytes give a FormatError (fast-check, 300 runs)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), typedOrValue), { numRuns: 300, seed: 5 });
});

test('fuzz: byte-mutated exports (flips, truncation, appended bytes) give a FormatError or a model (fast-check, 100 runs)', () => {
  const arb = fc
    .record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 16 }),
    })
    .map(({ flips, cut, tail }) => {
      let b = new Uint8Array(base); // a copy
      // Half the flips land in the first 64 KiB (graph structure, names, attributes), half anywhere.
      flips.forEach(([at, v], i) => (b[i % 2 ? at % b.length : at % Math.min(b.length, 65536)] = v));
      if (cut !== undefined) b = b.subarray(0, cut % b.length);
      const out = new Uint8Array(b.length + tail.length);
      out.set(b);
      out.set(tail, b.length);
      return out;
    });
  fc.assert(fc.property(arb, typedOrValue), { numRuns: 100, seed: 9 });
});

test('fuzz: structure-mutated exports (op types, wiring, attributes, shapes, payloads, node order) give a FormatError or a model (fast-check, 200 runs)', () => {
  fc.assert(
    fc.property(mutationArb, (muts) => typedOrValue(applyMutations(base, muts))),
    { numRuns: 200, seed: 13 },
  );
});
