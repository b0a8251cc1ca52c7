// Entry point of the kernel module. Every job is a descriptor in shared memory; each thread
// (the main thread and the workers) calls run_job(desc, tid) and takes task indices from the
// descriptor's atomic counter until none are left, so faster threads take more tiles.
import { D_COUNTER, D_KIND, D_NTASKS, D_STATS, di } from './desc';
import { gemmTask, packATask, packBTask } from './gemm';
import { col2imTask, padTask, tapWeightsTask } from './conv';
import { groupedConvTask } from './grouped';
import { eltTask } from './eltwise';
import { bnTask, sumMidTask } from './norm';
import { poolTask } from './pool';
import { winoDyTask, winoInTask, winoOutTask, winoWeightTask, winoWgradTask } from './winograd';
import { wino4InTask, wino4OutTask, wino4WeightTask } from './winograd4';

// Descriptor slot numbers are exported as globals so the JS side reads them from the module.
export * from './desc';
export * from './gemm';
export * from './conv';
export * from './grouped';
export * from './eltwise';
export * from './norm';
export * from './pool';
export * from './winograd';

export const K_GEMM: i32 = 1;
export const K_PAD: i32 = 2;
export const K_COL2IM: i32 = 3;
export const K_ELT: i32 = 5;
export const K_BN: i32 = 6;
export const K_SUMMID: i32 = 7;
export const K_POOL: i32 = 8;
export const K_WINO_IN: i32 = 9;
export const K_WINO_W: i32 = 10;
export const K_WINO_OUT: i32 = 11;
export const K_WINO_DY: i32 = 12;
export const K_WINO_WGRAD: i32 = 13;
export const K_PACKB: i32 = 14;
export const K_PACKA: i32 = 15;
export const K_GCONV: i32 = 16;
export const K_WINO4_IN: i32 = 17;
export const K_WINO4_W: i32 = 18;
export const K_WINO4_OUT: i32 = 19;
export const K_TAPW: i32 = 20;

export function run_job(d: usize, tid: i32): void {
  const kind = di(d, D_KIND);
  const n = di(d, D_NTASKS);
  const stat = d + (<usize>(D_STATS + tid) << 2);
  store<i32>(stat, 0);
  for (;;) {
    const t = atomic.add<i32>(d + (<usize>D_COUNTER << 2), 1);
    if (t >= n) break;
    switch (kind) {
      case K_GEMM: gemmTask(d, t, tid); break;
      case K_PAD: padTask(d, t); break;
      case K_COL2IM: col2imTask(d, t); break;
      case K_ELT: eltTask(d, t); break;
      case K_BN: bnTask(d, t); break;
      case K_SUMMID: sumMidTask(d, t); break;
      case K_POOL: poolTask(d, t, tid); break;
      case K_WINO_IN: winoInTask(d, t); break;
      case K_WINO_W: winoWeightTask(d, t); break;
      case K_WINO_OUT: winoOutTask(d, t); break;
      case K_WINO_DY: winoDyTask(d, t); break;
      case K_WINO_WGRAD: winoWgradTask(d, t); break;
      case K_PACKB: packBTask(d, t, tid); break;
      case K_PACKA: packATask(d, t); break;
      case K_GCONV: groupedConvTask(d, t, tid); break;
      case K_WINO4_IN: wino4InTask(d, t); break;
      case K_WINO4_W: wino4WeightTask(d, t); break;
      case K_WINO4_OUT: wino4OutTask(d, t); break;
      case K_TAPW: tapWeightsTask(d, t); break;
      default: unreachable();
    }
    store<i32>(stat, load<i32>(stat) + 1);
  }
}

/** End of the module's static data; the JS allocator starts above it. */
export function heap_base(): usize {
  return __heap_base;
}

/** memset 0 (bulk memory: much faster than TypedArray.fill on a SharedArrayBuffer). */
export function zero_bytes(p: usize, n: usize): void {
  memory.fill(p, 0, n);
}

/** memcpy. */
export function copy_bytes(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}
