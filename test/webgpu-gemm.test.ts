// WebGPU gemm vs the ref backend (the oracle) on Node's WebGPU (Dawn; llvmpipe here, so sizes are
// small). Shapes are chosen around the tile edges: 16/32/64 tiles, BK = 16, vec4 loads only when a
// contiguous length is a multiple of 4.
import assert from 'node:assert/strict';
import { test, before } from 'node:test';
import { RNG } from '../src/base/rng.js';
import { RefBackend } from '../src/backend/ref/ref.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { tuning } from '../src/backend/webgpu/kernels/gemm.js';
import { webgpuSkipReason, webgpuForTests } from './webgpu-env.js';
import { randArray } from './helpers.js';
import { assertScaled, upload } from './webgpu-kernel-util.js';

const skip = await webgpuSkipReason(); // false, or why there is no webgpu here (an error in CI)
let gpu: WebGpuBackend;
const ref = new RefBackend();
before(async () => {
  if (!skip) gpu = await webgpuForTests();
});

const cases: [boolean, boolean, number, number, number, boolean][] = [
  // transA, transB, M, N, K, accumulate
  [false, false, 1, 1, 1, false],
  [false, false, 17, 33, 5, false], // odd everything: scalar loads, partial tiles
  [false, false, 64, 64, 32, false], // exact 64×64 tiles, vec4 loads
  [false, false, 65, 130, 48, true], // one row/2 columns past the tile, accumulate
  [true, false, 31, 9, 19, false],
  [true, false, 40, 72, 36, true], // vec4 A along M, vec4 B along N
  [false, true, 7, 100, 33, false],
  [false, true, 80, 20, 64, false], // vec4 along K for both
  [true, true, 13, 29, 17, true],
  [true, true, 128, 12, 8, false],
  [false, false, 3, 10, 600, true], // split-K (few tiles, long reduction), accumulate in the finishing pass
  [true, true, 5, 7, 1000, false], // split-K, 3 chunks
  [false, false, 3, 5, 0, true], // K = 0 leaves C as it was
  [false, false, 3, 5, 0, false], // K = 0 zeroes C
];
// the 128×128 tiles with 8×8 per thread, forced at sizes llvmpipe runs quickly
const bigCases: [boolean, boolean, number, number, number, boolean][] = [
  [false, false, 130, 136, 40, false], // vec4 loads, partial tiles
  [true, false, 129, 131, 17, false], // scalar loads
  [false, true, 256, 128, 20, false], // exact tiles, two of them
  [true, true, 140, 200, 36, true],
];

// tiles folded from grid x into y (as past 65535 workgroups), here at most 2 per row of the grid
const foldCases: [boolean, boolean, number, number, number, boolean][] = [
  [false, false, 70, 200, 9, false], // 2 × 4 tiles: 4 rows of 2
  [true, false, 100, 140, 5, true], // 2 × 3 tiles: 3 rows of 2
];

for (const [ta, tb, M, N, K, acc, big, fold] of [
  ...cases.map((c) => [...c, false, false] as const),
  ...bigCases.map((c) => [...c, true, false] as const),
  ...foldCases.map((c) => [...c, false, true] as const),
]) {
  test(
    `webgpu gemm${big ? ' 128×128 tiles' : ''}${fold ? ' grid folded' : ''} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} M=${M} N=${N} K=${K}${acc ? ' accumulate' : ''} = ref (atol 1e-5 × max|ref|)`,
    { skip },
    async () => {
      const rng = new RNG(M * 1000 + N * 10 + K);
      const a = randArray(M * K, rng),
        b = randArray(K * N, rng),
        c0 = randArray(M * N, rng);
      const expected = c0.slice();
      ref.gemm(ta, tb, M, N, K, a, b, expected, acc);
      const [A, B, C] = [a, b, c0].map((v) => upload(gpu, v));
      const saved = { ...tuning };
      if (big) tuning.bigTileMinGroups = 1;
      if (fold) tuning.maxGridX = 2;
      try {
        gpu.gemm(ta, tb, M, N, K, A, B, C, acc);
      } finally {
        Object.assign(tuning, saved);
      }
      const got = await gpu.read(C);
      for (const s of [A, B, C]) gpu.free(s);
      assert.equal(gpu.allocatedFloats(), 0, 'floats left allocated (a split-K partial not freed?)');
      assertScaled(got, expected, 1e-5, 'C');
    },
  );
}
