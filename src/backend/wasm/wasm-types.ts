// The WebAssembly types our declarations name. TypeScript declares the WebAssembly namespace only in
// lib.dom / lib.webworker (not in the ES libs, and @types/node does not declare it), so a published
// .d.ts that says `WebAssembly.Memory` fails to compile in a Node project whose lib has no DOM
// (with skipLibCheck false, tsc's default). These aliases resolve to the real types wherever the
// namespace exists (our build, browser projects) and to a structural stand-in where it does not.
// (not `never` where it is missing: `never extends X` holds, which would make both aliases `unknown`)
type WasmNamespace = typeof globalThis extends { WebAssembly: infer W } ? W : Record<never, never>;

/** WebAssembly.Module where the lib declares it, else an opaque object. */
export type WasmModule = WasmNamespace extends { Module: abstract new (...args: never[]) => infer M } ? M : object;

/** WebAssembly.Memory where the lib declares it, else the part of it that we use. */
export type WasmMemory = WasmNamespace extends { Memory: abstract new (...args: never[]) => infer M }
  ? M
  : { readonly buffer: ArrayBuffer | SharedArrayBuffer; grow(delta: number): number };
