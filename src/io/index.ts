// Browser-safe file formats: every parser takes and returns bytes (Uint8Array). The Node file
// helpers (paths, atomic writes) live in ./files.js and are not re-exported here.
export type { ArrayMap, DType, NamedArray } from './types.js';
export { DTYPE_SIZE } from './types.js';
export { readSafetensors, readSafetensorsHeader, readSafetensorsMetadata, writeSafetensors } from './safetensors.js';
export type { SafetensorsEntry, SafetensorsHeader } from './safetensors.js';
export { readNpy, readNpyHeader, readNpz, writeNpy, writeNpz } from './npy.js';
export { readPth, readPthObject, writePth } from './pth.js';
export type { PthObject, PthOptions, WritePthOptions } from './pth.js';
export { unpickle, PyDict, PyTuple, PyGlobal, StorageRef, TensorRef } from './pickle.js';
export type { PyValue, UnpickleLimits, UnpickleOptions } from './pickle.js';
export { ZipReader, DEFAULT_ZIP_LIMITS, writeZipStored } from './zip.js';
export type { ZipEntry, ZipLimits } from './zip.js';
export { detectFormat, readArrays } from './detect.js';
export type { ArrayFormat } from './detect.js';
