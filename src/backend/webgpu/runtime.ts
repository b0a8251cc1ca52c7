// The WebGPU runtime under the 'webgpu' backend: buffers (pooled by size), compute pipelines
// (cached by key), and dispatches recorded into one command encoder until something needs the
// queue (a read, an upload, or too many dispatches). Kernels (kernels/*.ts) only call dispatch().
//
// Ordering: every GPU operation here goes through the single queue, in program order: dispatches
// are recorded in order, uploads (queue.writeBuffer) first submit what is recorded, and reads copy
// after everything recorded. So a freed buffer can go back to the pool at once: whatever the GPU
// still has to do with it is ahead, in the queue, of any later use.
//
// Binding convention for kernels: @group(0) @binding(0) is the uniform block (when the kernel has
// one), then bindings 1..n are the storage buffers in the order given to dispatch(). The uniform
// block is a WGSL struct of 4-byte scalars (u32, i32, f32) in the order they were written with
// Uniforms; the runtime pads it. A buffer must not be bound twice in one dispatch when one of the
// bindings is writable (WebGPU rejects the aliasing): in-place kernels bind it once, read_write.
//
// Errors: WebGPU reports them asynchronously (uncaptured errors, device loss, error scopes), so the
// first one is kept and thrown by the next call into the runtime (check()), or by read().
// Allocation failures are caught per new buffer with an 'out-of-memory' error scope.
import type { Storage } from '../backend.js';

/** A backend-owned handle to `length` floats in a GPUBuffer (bytes may be larger: pooled size). */
export class GpuStorage implements Storage {
  constructor(
    readonly buffer: GPUBuffer,
    readonly length: number,
  ) {}
}

/** Builds a uniform block: 4-byte scalars in WGSL struct order. */
export class Uniforms {
  private readonly words: number[] = [];
  private readonly kinds: ('u' | 'i' | 'f')[] = [];
  u32(...v: number[]): this {
    for (const x of v) {
      if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new RangeError(`uniform u32 out of range: ${x}`);
      this.words.push(x);
      this.kinds.push('u');
    }
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) {
      if (!Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff) throw new RangeError(`uniform i32 out of range: ${x}`);
      this.words.push(x);
      this.kinds.push('i');
    }
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) {
      this.words.push(x);
      this.kinds.push('f');
    }
    return this;
  }
  /** The block as bytes, padded to a multiple of 16. */
  bytes(): Uint8Array {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    this.words.forEach((w, k) => {
      if (this.kinds[k] === 'u') u[k] = w;
      else if (this.kinds[k] === 'i') i[k] = w;
      else f[k] = w;
    });
    return new Uint8Array(buf);
  }
}

export interface Dispatch {
  /** Identifies the WGSL source: the pipeline is compiled once per key. */
  key: string;
  /** WGSL source (only called when the key is new). Entry point `main`. */
  code: () => string;
  uniforms?: Uniforms;
  /** Storage buffers at bindings 1..n (or 0..n-1 when there are no uniforms). */
  buffers: readonly (GpuStorage | GPUBuffer)[];
  /** Workgroup counts; each must be ≤ maxComputeWorkgroupsPerDimension (65535 by default). */
  groups: readonly [number, number?, number?];
}

const MAX_RECORDED = 256; // dispatches per command encoder before it is submitted
const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment is at most 256

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly maxGroups: number;
  private pipelines = new Map<string, GPUComputePipeline>();
  private pool = new Map<number, GPUBuffer[]>(); // byte size -> free buffers
  private pooled = 0; // bytes in the pool
  /** The pool keeps at most this many bytes of free buffers; a buffer freed beyond is destroyed. */
  poolLimitBytes = 1 << 30;
  // handles handed out (a handle, not its GPUBuffer: a stale handle freed again must not free the
  // buffer's next owner)
  private live = new Set<GpuStorage>();
  private liveFloats = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recorded = 0;
  private uniformBuffer: GPUBuffer;
  private uniformData: Uint8Array<ArrayBuffer>;
  private uniformUsed = 0;
  private lost: string | null = null;
  private firstError: string | null = null;
  private disposed = false;
  private aliasedKernels = new Set<string>(); // since the last error: for its message
  private readonly maxBinding: number;

  constructor(device: GPUDevice) {
    this.device = device;
    this.maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    // kernels bind whole buffers, so a buffer can be no bigger than one binding
    this.maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.uniformData = new Uint8Array(MAX_RECORDED * UNIFORM_SLOT);
    this.uniformBuffer = device.createBuffer({ size: this.uniformData.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    void device.lost.then((info) => {
      if (!this.disposed) this.lost = `WebGPU device lost (${info.reason}): ${oneLine(info.message) || 'no message'}`;
    });
    device.addEventListener('uncapturederror', (ev) => this.report((ev as GPUUncapturedErrorEvent).error));
  }

  private report(e: GPUError): void {
    const oom = typeof GPUOutOfMemoryError !== 'undefined' && e instanceof GPUOutOfMemoryError;
    // a writable buffer bound twice is only found when the pass is validated, naming no kernel
    const aliased = this.aliasedKernels.size > 0 ? ` (kernels that bound one buffer twice: ${[...this.aliasedKernels].join(', ')})` : '';
    this.firstError ??= `WebGPU ${oom ? 'out of memory' : 'error'}: ${oneLine(e.message)}${aliased}`;
  }

  /** Throws the device-lost or first uncaptured error, if any (called on every entry point). */
  check(): void {
    if (this.disposed) throw new Error("webgpu backend: used after dispose() (await setBackend('webgpu') makes a new one)");
    if (this.lost) throw new Error(this.lost);
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      this.aliasedKernels.clear();
      throw new Error(e);
    }
  }

  // ---- buffers ----

  /** A zero-filled buffer of n floats. */
  alloc(n: number): GpuStorage {
    this.check();
    const bytes = Math.max(16, Math.ceil((n * 4) / 16) * 16);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`webgpu alloc: bad length ${n}`);
    if (bytes > this.maxBinding) {
      throw new RangeError(
        `webgpu backend: a tensor of ${n} floats (${mib(bytes)} MiB) is over this adapter's largest buffer binding (${mib(this.maxBinding)} MiB); use a smaller batch`,
      );
    }
    let buffer = this.pool.get(bytes)?.pop();
    if (buffer) {
      this.pooled -= bytes;
      // a recycled buffer holds old values: clear it in queue order
      this.endPass();
      this.encoderNow().clearBuffer(buffer);
      this.countRecorded();
    } else {
      // a failed allocation still returns a (invalid) buffer; the scope turns its error into a
      // clear one, thrown by the next call (allocation is synchronous, the verdict is not)
      this.device.pushErrorScope('out-of-memory');
      buffer = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      void this.device.popErrorScope().then((e) => {
        if (e) this.firstError ??= `WebGPU out of memory allocating ${mib(bytes)} MiB (${mib(this.liveBytes())} MiB live): ${oneLine(e.message)}`;
      });
    }
    const s = new GpuStorage(buffer, n);
    this.live.add(s);
    this.liveFloats += n;
    return s;
  }

  free(s: GpuStorage): void {
    if (!this.live.delete(s)) return; // freed twice: ignore
    this.liveFloats -= s.length;
    if (this.pooled + s.buffer.size > this.poolLimitBytes) {
      this.flush(); // recorded work may use it: submitted work keeps it alive until done
      s.buffer.destroy();
      return;
    }
    this.pooled += s.buffer.size;
    const list = this.pool.get(s.buffer.size);
    if (list) list.push(s.buffer);
    else this.pool.set(s.buffer.size, [s.buffer]);
  }

  allocatedFloats(): number {
    return this.liveFloats;
  }

  /** Bytes held by the pool (free buffers kept for reuse); for leak tests. */
  pooledBytes(): number {
    return this.pooled;
  }

  /** Buffers handed out and buffers kept by the pool, with their bytes; for leak tests. */
  poolStats(): { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number } {
    let pooledBuffers = 0;
    for (const list of this.pool.values()) pooledBuffers += list.length;
    return { liveBuffers: this.live.size, liveBytes: this.liveBytes(), pooledBuffers, pooledBytes: this.pooledBytes() };
  }

  private liveBytes(): number {
    let b = 0;
    for (const s of this.live) b += s.buffer.size;
    return b;
  }

  /** Destroys the pool's free buffers (GPU memory back to the system); live buffers stay. */
  releasePool(): void {
    this.flush(); // recorded work may still use them: submitted work keeps them until done
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooled = 0;
  }

  /** Frees every buffer and the device. The runtime (and every tensor on it) is unusable after. */
  dispose(): void {
    if (this.disposed) return;
    try {
      this.flush();
    } catch {
      // a lost device cannot submit; destroy anyway
    }
    this.releasePool();
    for (const s of this.live) s.buffer.destroy();
    this.live.clear();
    this.liveFloats = 0;
    this.uniformBuffer.destroy();
    this.pipelines.clear();
    this.disposed = true;
    this.device.destroy();
  }

  /** dst[offset..] = values (queued after everything recorded so far). */
  write(dst: GpuStorage, values: ArrayLike<number>, offset = 0): void {
    this.check();
    if (offset < 0 || offset + values.length > dst.length) throw new RangeError(`write of ${values.length} floats at ${offset} into a buffer of ${dst.length}`);
    this.flush();
    // Dawn takes no SharedArrayBuffer (wasm's memory, shared between threads): copy those
    const f = values instanceof Float32Array && values.buffer instanceof ArrayBuffer ? values : Float32Array.from(values);
    this.device.queue.writeBuffer(dst.buffer, offset * 4, f.buffer, f.byteOffset, f.byteLength);
  }

  /** A copy of the values, after everything recorded so far has run. */
  async read(src: GpuStorage): Promise<Float32Array> {
    this.check();
    const bytes = Math.max(16, Math.ceil((src.length * 4) / 16) * 16);
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.encoderNow().copyBufferToBuffer(src.buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      this.check(); // an error in the work before this read makes its values meaningless
      return new Float32Array(staging.getMappedRange(0, src.length * 4).slice(0));
    } catch (e) {
      this.check();
      throw e;
    } finally {
      staging.destroy();
    }
  }

  copy(src: GpuStorage, dst: GpuStorage): void {
    this.check();
    if (src.length !== dst.length) throw new RangeError(`copy between buffers of ${src.length} and ${dst.length} floats`);
    if (src.length === 0 || src.buffer === dst.buffer) return;
    this.endPass();
    this.encoderNow().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.length * 4);
    this.countRecorded();
  }

  // ---- dispatch ----

  /** Records one compute dispatch. Zero-sized grids are skipped. */
  dispatch(d: Dispatch): void {
    this.check();
    const [x, y = 1, z = 1] = d.groups;
    if (x === 0 || y === 0 || z === 0) return;
    if (x > this.maxGroups || y > this.maxGroups || z > this.maxGroups) {
      throw new RangeError(`webgpu kernel ${d.key}: grid ${x}×${y}×${z} exceeds ${this.maxGroups} workgroups per dimension`);
    }
    const pipeline = this.pipeline(d.key, d.code);
    const entries: GPUBindGroupEntry[] = [];
    let binding = 0;
    if (d.uniforms) {
      if (this.uniformUsed + UNIFORM_SLOT > this.uniformData.byteLength) this.flush();
      const bytes = d.uniforms.bytes();
      if (bytes.byteLength > UNIFORM_SLOT) throw new RangeError(`webgpu kernel ${d.key}: uniform block over ${UNIFORM_SLOT} bytes`);
      this.uniformData.set(bytes, this.uniformUsed);
      entries.push({ binding: binding++, resource: { buffer: this.uniformBuffer, offset: this.uniformUsed, size: bytes.byteLength } });
      this.uniformUsed += UNIFORM_SLOT;
    }
    const seen = new Set<GPUBuffer>();
    for (const b of d.buffers) {
      const buffer = b instanceof GpuStorage ? b.buffer : b;
      if (seen.has(buffer)) this.aliasedKernels.add(d.key); // legal when every binding is read-only
      seen.add(buffer);
      entries.push({ binding: binding++, resource: { buffer } });
    }
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.passNow();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    this.countRecorded();
  }

  /** Submits everything recorded (uniforms first). */
  flush(): void {
    if (!this.encoder || this.disposed) return;
    this.endPass();
    if (this.uniformUsed > 0) this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformData, 0, this.uniformUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.recorded = 0;
    this.uniformUsed = 0;
  }

  /** Resolves when the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  private pipeline(key: string, code: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: key });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
      this.pipelines.set(key, p);
    }
    return p;
  }

  private encoderNow(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private passNow(): GPUComputePassEncoder {
    return (this.pass ??= this.encoderNow().beginComputePass());
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private countRecorded(): void {
    if (++this.recorded >= MAX_RECORDED) this.flush();
  }
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/** Dawn's multi-line message on one line: the error, then its ' - While ...' context, which names
 * the kernel (pipelines and shader modules are labelled with their key). */
function oneLine(msg: string): string {
  const lines = msg
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const head = lines[0] ?? '';
  const context = lines.filter((l) => l.startsWith('- While')).map((l) => l.slice(2));
  const text = [head, ...context].join('; ');
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}
