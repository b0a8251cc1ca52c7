// The subset of the ONNX protobuf schema (onnx/onnx.proto, IR version 7+) that a ResNet graph
// needs, written out by field number from the ONNX specification as a protobufjs JSON
// descriptor. Fields left out here (subgraphs in attributes, sparse tensors, training info,
// functions) are skipped as unknown fields when decoding, so a hostile file cannot make the
// decoder recurse through nested graphs. Browser-safe.
import protobuf from 'protobufjs';

const DESCRIPTOR: protobuf.INamespace = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { id: 1, type: 'int64' },
            opsetImport: { id: 8, type: 'OperatorSetIdProto', rule: 'repeated' },
            producerName: { id: 2, type: 'string' },
            producerVersion: { id: 3, type: 'string' },
            domain: { id: 4, type: 'string' },
            modelVersion: { id: 5, type: 'int64' },
            docString: { id: 6, type: 'string' },
            graph: { id: 7, type: 'GraphProto' },
            metadataProps: { id: 14, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { id: 1, type: 'string' },
            version: { id: 2, type: 'int64' },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { id: 1, type: 'string' },
            value: { id: 2, type: 'string' },
          },
        },
        GraphProto: {
          fields: {
            node: { id: 1, type: 'NodeProto', rule: 'repeated' },
            name: { id: 2, type: 'string' },
            initializer: { id: 5, type: 'TensorProto', rule: 'repeated' },
            docString: { id: 10, type: 'string' },
            input: { id: 11, type: 'ValueInfoProto', rule: 'repeated' },
            output: { id: 12, type: 'ValueInfoProto', rule: 'repeated' },
            valueInfo: { id: 13, type: 'ValueInfoProto', rule: 'repeated' },
          },
        },
        NodeProto: {
          fields: {
            input: { id: 1, type: 'string', rule: 'repeated' },
            output: { id: 2, type: 'string', rule: 'repeated' },
            name: { id: 3, type: 'string' },
            opType: { id: 4, type: 'string' },
            domain: { id: 7, type: 'string' },
            attribute: { id: 5, type: 'AttributeProto', rule: 'repeated' },
            docString: { id: 6, type: 'string' },
          },
        },
        AttributeProto: {
          fields: {
            name: { id: 1, type: 'string' },
            refAttrName: { id: 21, type: 'string' },
            docString: { id: 13, type: 'string' },
            type: { id: 20, type: 'AttributeType' },
            f: { id: 2, type: 'float' },
            i: { id: 3, type: 'int64' },
            s: { id: 4, type: 'bytes' },
            t: { id: 5, type: 'TensorProto' },
            floats: { id: 7, type: 'float', rule: 'repeated' },
            ints: { id: 8, type: 'int64', rule: 'repeated' },
            strings: { id: 9, type: 'bytes', rule: 'repeated' },
          },
          nested: {
            AttributeType: {
              values: {
                UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
                TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
              },
            },
          },
        },
        TensorProto: {
          fields: {
            dims: { id: 1, type: 'int64', rule: 'repeated' },
            dataType: { id: 2, type: 'int32' },
            floatData: { id: 4, type: 'float', rule: 'repeated' },
            int32Data: { id: 5, type: 'int32', rule: 'repeated' },
            int64Data: { id: 7, type: 'int64', rule: 'repeated' },
            name: { id: 8, type: 'string' },
            docString: { id: 12, type: 'string' },
            rawData: { id: 9, type: 'bytes' },
            externalData: { id: 13, type: 'StringStringEntryProto', rule: 'repeated' },
            dataLocation: { id: 14, type: 'int32' },
            doubleData: { id: 10, type: 'double', rule: 'repeated' },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { id: 1, type: 'string' },
            type: { id: 2, type: 'TypeProto' },
            docString: { id: 3, type: 'string' },
          },
        },
        TypeProto: {
          fields: {
            tensorType: { id: 1, type: 'TensorTypeProto' },
            denotation: { id: 6, type: 'string' },
          },
        },
        // TypeProto.Tensor in onnx.proto (a nested message there; a sibling here, same wire format).
        TensorTypeProto: {
          fields: {
            elemType: { id: 1, type: 'int32' },
            shape: { id: 2, type: 'TensorShapeProto' },
          },
        },
        TensorShapeProto: {
          fields: {
            dim: { id: 1, type: 'Dimension', rule: 'repeated' },
          },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: {
                dimValue: { id: 1, type: 'int64' },
                dimParam: { id: 2, type: 'string' },
                denotation: { id: 3, type: 'string' },
              },
            },
          },
        },
      },
    },
  },
};

/** ONNX TensorProto.DataType values used here. */
export const ONNX_DTYPE = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11,
  UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType values used here. */
export const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

let root: protobuf.Root | null = null;

export function onnxType(name: 'ModelProto' | 'TensorProto' | 'GraphProto'): protobuf.Type {
  root ??= protobuf.Root.fromJSON(DESCRIPTOR);
  return root.lookupType(`onnx.${name}`);
}

// Plain-object shapes of the decoded messages (protobufjs toObject with longs as numbers/strings).
export type Int64 = number | string | { toNumber(): number; high: number; low: number; unsigned?: boolean };

export interface OnnxTensor {
  dims?: Int64[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  doubleData?: number[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: { key?: string; value?: string }[];
  dataLocation?: number;
}

export interface OnnxAttribute {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  refAttrName?: string;
}

export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: OnnxAttribute[];
}

export interface OnnxDim {
  dimValue?: Int64;
  dimParam?: string;
}

export interface OnnxValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: OnnxDim[] } } };
}

export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string;
  initializer?: OnnxTensor[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
  valueInfo?: OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModel {
  irVersion?: Int64;
  opsetImport?: { domain?: string; version?: Int64 }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: OnnxGraph;
  metadataProps?: { key?: string; value?: string }[];
}
