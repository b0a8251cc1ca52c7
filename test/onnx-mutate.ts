// Structure-aware mutations of an ONNX model for fuzzing the importer: decode, change node op
// types, wiring, attributes, initializer shapes and payloads, re-encode.
/* eslint-disable @typescript-eslint/no-explicit-any -- mutations edit a decoded protobuf message in place */
import fc from 'fast-check';
import { onnxType } from '../src/io/onnx-schema.js';

export type Mutation =
  | { kind: 'op'; node: number; op: string }
  | { kind: 'input'; node: number; slot: number; pick: number }
  | { kind: 'ints'; node: number; attr: number; ints: number[] }
  | { kind: 'int'; node: number; attr: number; value: number }
  | { kind: 'dims'; init: number; dims: number[] }
  | { kind: 'raw'; init: number; cut: number }
  | { kind: 'drop'; node: number }
  | { kind: 'dup'; node: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'output'; pick: number };

const OPS = [
  'Conv',
  'Relu',
  'Add',
  'BatchNormalization',
  'MaxPool',
  'GlobalAveragePool',
  'Flatten',
  'Gemm',
  'Slice',
  'Pad',
  'Identity',
  'Constant',
  'Reshape',
  'Concat',
  'Transpose',
  'Cast',
  'ConstantOfShape',
  'Squeeze',
  'Unsqueeze',
  'ReduceMean',
  'MatMul',
  'Dropout',
  'Softmax',
];
const weird = fc.oneof(fc.integer({ min: -3, max: 8 }), fc.constantFrom(0, -1, 2 ** 31 - 1, 2 ** 40, -(2 ** 40), 2 ** 53));

export const mutationArb: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('op' as const), node: fc.nat(), op: fc.constantFrom(...OPS) }),
    fc.record({ kind: fc.constant('input' as const), node: fc.nat(), slot: fc.nat(5), pick: fc.nat() }),
    fc.record({ kind: fc.constant('ints' as const), node: fc.nat(), attr: fc.nat(), ints: fc.array(weird, { maxLength: 9 }) }),
    fc.record({ kind: fc.constant('int' as const), node: fc.nat(), attr: fc.nat(), value: weird }),
    fc.record({ kind: fc.constant('dims' as const), init: fc.nat(), dims: fc.array(weird, { maxLength: 5 }) }),
    fc.record({ kind: fc.constant('raw' as const), init: fc.nat(), cut: fc.nat() }),
    fc.record({ kind: fc.constant('drop' as const), node: fc.nat() }),
    fc.record({ kind: fc.constant('dup' as const), node: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
    fc.record({ kind: fc.constant('output' as const), pick: fc.nat() }),
  ),
  { minLength: 1, maxLength: 3 },
);

export function applyMutations(bytes: Uint8Array, muts: Mutation[]): Uint8Array {
  const T = onnxType('ModelProto');
  const m = T.decode(bytes) as any;
  const g = m.graph;
  const nodes: any[] = g.node;
  const values = [g.input[0].name, ...nodes.flatMap((n) => n.output), ...g.initializer.map((t: any) => t.name), ''];
  for (const mu of muts) {
    const n = nodes.length ? nodes[(mu as { node?: number }).node! % nodes.length] : null;
    switch (mu.kind) {
      case 'op':
        if (n) n.opType = mu.op;
        break;
      case 'input':
        if (n) n.input[mu.slot % (n.input.length + 1)] = values[mu.pick % values.length];
        break;
      case 'ints':
        if (n && n.attribute.length) n.attribute[mu.attr % n.attribute.length].ints = mu.ints;
        break;
      case 'int':
        if (n && n.attribute.length) {
          const a = n.attribute[mu.attr % n.attribute.length];
          a.i = mu.value;
          a.type = 2;
        }
        break;
      case 'dims': {
        const t = g.initializer[mu.init % g.initializer.length];
        t.dims = mu.dims;
        break;
      }
      case 'raw': {
        const t = g.initializer[mu.init % g.initializer.length];
        t.rawData = t.rawData.subarray(0, mu.cut % (t.rawData.length + 1));
        break;
      }
      case 'drop':
        if (n) nodes.splice(nodes.indexOf(n), 1);
        break;
      case 'dup':
        if (n) nodes.push(n);
        break;
      case 'swap':
        if (nodes.length) {
          const i = mu.a % nodes.length,
            j = mu.b % nodes.length;
          [nodes[i], nodes[j]] = [nodes[j], nodes[i]];
        }
        break;
      case 'output':
        g.output[0].name = values[mu.pick % values.length];
        break;
    }
  }
  return T.encode(m).finish();
}
