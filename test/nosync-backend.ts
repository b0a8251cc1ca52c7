// A test backend that reads only asynchronously, as a GPU does: the ref backend's kernels with
// readSync removed, and read() resolving on a later macrotask (a GPU's mapAsync does), so code
// that assumes values are at hand at once fails here. It counts reads, so a test can see when
// the stack reads back. Registered as 'ref-nosync'.
import { RefBackend } from '../src/backend/ref/ref.js';
import { registerBackend } from '../src/backend/registry.js';

export class NoSyncBackend extends RefBackend {
  override readonly name: string = 'ref-nosync';
  /** Every read() so far, with what `onRead` returned at the time (e.g. the step count). */
  readonly reads: unknown[] = [];
  onRead: () => unknown = () => null;

  constructor() {
    super();
    // an own property shadows RefBackend.prototype.readSync: the backend has none
    Object.defineProperty(this, 'readSync', { value: undefined });
  }

  override read(src: Float32Array): Promise<Float32Array> {
    this.reads.push(this.onRead());
    const copy = src.slice(); // the values at the time of the call, as a GPU's queued copy
    return new Promise((resolve) => setTimeout(() => resolve(copy), 0));
  }
}

export const noSync = new NoSyncBackend();
registerBackend('ref-nosync', () => noSync);
