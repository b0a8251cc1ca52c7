// The reference backend: plain TypeScript loops. Slow, obvious and the oracle every other
// backend is tested against. Convolutions go through im2col + gemm, which is both the
// textbook formulation and fast enough for the parity tests.
import type { Backend, BinaryOp, Conv2dParams, Pool2dParams, Storage, UnaryOp } from '../backend.js';

export class RefBackend implements Backend {
  readonly name: string = 'ref';
  protected live = 0;

  /**
   * The floats of a buffer, the one way every kernel here reaches them. Here a buffer is its
   * Float32Array; a backend with other storage (wasm: a block of a memory that may grow and
   * detach its views) overrides this, so a view is made when a kernel starts and never kept.
   * Public for the host optimizer loops in ./optim.ts.
   */
  view(s: Storage): Float32Array {
    return s as Float32Array;
  }

  alloc(n: number): Storage {
    this.live += n;
    return new Float32Array(n);
  }

  free(buf: Storage): void {
    this.live -= buf.length;
  }

  allocatedFloats(): number {
    return this.live;
  }

  write(dst: Storage, values: ArrayLike<number>, offset = 0): void {
    this.view(dst).set(values, offset);
  }

  read(src: Storage): Promise<Float32Array> {
    return Promise.resolve(this.view(src).slice());
  }

  readSync(src: Storage): Float32Array {
    return this.view(src).slice();
  }

  copy(src: Storage, dst: Storage): void {
    this.view(dst).set(this.view(src));
  }

  fill(dst: Storage, value: number): void {
    this.view(dst).fill(value);
  }

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: Storage, B: Storage, C: Storage, accumulate: boolean): void {
    gemmF32(transA, transB, M, N, K, this.view(A), this.view(B), this.view(C), accumulate);
  }

  /** cols[(c*R + r)*S + s, oh*OW + ow] for one image and one group of input channels. */
  protected im2col(x: Float32Array, xOff: number, cols: Float32Array, Cg: number, p: Conv2dParams): void {
    const { H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilH, dilW } = p;
    let o = 0;
    for (let c = 0; c < Cg; c++) {
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < S; s++) {
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * strideH - padH + r * dilH;
            const rowOk = ih >= 0 && ih < H;
            const base = xOff + (c * H + ih) * W;
            for (let ow = 0; ow < OW; ow++) {
              const iw = ow * strideW - padW + s * dilW;
              cols[o++] = rowOk && iw >= 0 && iw < W ? x[base + iw] : 0;
            }
          }
        }
      }
    }
  }

  /** The adjoint of im2col: scatter-add cols back into an image (dx must be zeroed first). */
  protected col2im(cols: Float32Array, dx: Float32Array, dxOff: number, Cg: number, p: Conv2dParams): void {
    const { H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilH, dilW } = p;
    let o = 0;
    for (let c = 0; c < Cg; c++) {
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < S; s++) {
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * strideH - padH + r * dilH;
            const rowOk = ih >= 0 && ih < H;
            const base = dxOff + (c * H + ih) * W;
            for (let ow = 0; ow < OW; ow++, o++) {
              const iw = ow * strideW - padW + s * dilW;
              if (rowOk && iw >= 0 && iw < W) dx[base + iw] += cols[o];
            }
          }
        }
      }
    }
  }

  conv2dFused(
    x: Storage,
    w: Storage,
    bias: Storage | null,
    y: Storage,
    p: Conv2dParams,
    relu: boolean,
    residual: Storage | null,
    _constWeights: boolean,
  ): void {
    this.conv2d(x, w, bias, y, p);
    if (residual) this.addInPlace(y, residual);
    if (relu) this.unary('relu', y, y);
  }

  conv2d(xH: Storage, wH: Storage, biasH: Storage | null, yH: Storage, p: Conv2dParams): void {
    const x = this.view(xH);
    const w = this.view(wH);
    const bias = biasH ? this.view(biasH) : null;
    const y = this.view(yH);
    const { N, C, H, W, K, R, S, OH, OW, groups } = p;
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    const cols = new Float32Array(CRS * L);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        this.im2col(x, (n * C + g * Cg) * H * W, cols, Cg, p);
        const out = y.subarray((n * K + g * Kg) * L, (n * K + (g + 1) * Kg) * L);
        gemmF32(false, false, Kg, L, CRS, w.subarray(g * Kg * CRS, (g + 1) * Kg * CRS), cols, out, false);
      }
      if (bias) {
        for (let k = 0; k < K; k++) {
          const b = bias[k],
            o = (n * K + k) * L;
          for (let i = 0; i < L; i++) y[o + i] += b;
        }
      }
    }
  }

  conv2dBackwardData(dyH: Storage, wH: Storage, dxH: Storage, p: Conv2dParams): void {
    const dy = this.view(dyH);
    const w = this.view(wH);
    const dx = this.view(dxH);
    const { N, C, H, W, K, R, S, OH, OW, groups } = p;
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    const cols = new Float32Array(CRS * L);
    dx.fill(0, 0, N * C * H * W);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        // cols[CRS, L] = w_g^T[CRS, Kg] @ dy_g[Kg, L]
        const dyg = dy.subarray((n * K + g * Kg) * L, (n * K + (g + 1) * Kg) * L);
        gemmF32(true, false, CRS, L, Kg, w.subarray(g * Kg * CRS, (g + 1) * Kg * CRS), dyg, cols, false);
        this.col2im(cols, dx, (n * C + g * Cg) * H * W, Cg, p);
      }
    }
  }

  conv2dBackwardFilter(xH: Storage, dyH: Storage, dwH: Storage, p: Conv2dParams): void {
    const x = this.view(xH);
    const dy = this.view(dyH);
    const dw = this.view(dwH);
    const { N, C, H, W, K, R, S, OH, OW, groups } = p;
    const Cg = C / groups,
      Kg = K / groups,
      L = OH * OW,
      CRS = Cg * R * S;
    const cols = new Float32Array(CRS * L);
    dw.fill(0, 0, K * CRS);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        this.im2col(x, (n * C + g * Cg) * H * W, cols, Cg, p);
        // dw_g[Kg, CRS] += dy_g[Kg, L] @ cols^T[L, CRS]
        const dyg = dy.subarray((n * K + g * Kg) * L, (n * K + (g + 1) * Kg) * L);
        gemmF32(false, true, Kg, CRS, L, dyg, cols, dw.subarray(g * Kg * CRS, (g + 1) * Kg * CRS), true);
      }
    }
  }

  batchNormTrain(
    xH: Storage,
    gammaH: Storage | null,
    betaH: Storage | null,
    yH: Storage,
    saveMeanH: Storage,
    saveInvStdH: Storage,
    batchVarH: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    const x = this.view(xH);
    const gamma = gammaH ? this.view(gammaH) : null;
    const beta = betaH ? this.view(betaH) : null;
    const y = this.view(yH);
    const saveMean = this.view(saveMeanH);
    const saveInvStd = this.view(saveInvStdH);
    const batchVar = this.view(batchVarH);
    const M = N * HW;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) s += x[o + i];
      }
      const mean = s / M;
      let ss = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) {
          const d = x[o + i] - mean;
          ss += d * d;
        }
      }
      const v = ss / M;
      const invStd = 1 / Math.sqrt(v + eps);
      saveMean[c] = mean;
      saveInvStd[c] = invStd;
      batchVar[c] = v;
      const g = gamma ? gamma[c] : 1,
        b = beta ? beta[c] : 0;
      const scale = g * invStd,
        shift = b - mean * scale;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) y[o + i] = x[o + i] * scale + shift;
      }
    }
  }

  batchNormEval(
    xH: Storage,
    gammaH: Storage | null,
    betaH: Storage | null,
    meanH: Storage,
    varianceH: Storage,
    yH: Storage,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    const x = this.view(xH);
    const gamma = gammaH ? this.view(gammaH) : null;
    const beta = betaH ? this.view(betaH) : null;
    const mean = this.view(meanH);
    const variance = this.view(varianceH);
    const y = this.view(yH);
    for (let c = 0; c < C; c++) {
      const invStd = 1 / Math.sqrt(variance[c] + eps);
      const g = gamma ? gamma[c] : 1,
        b = beta ? beta[c] : 0;
      const scale = g * invStd,
        shift = b - mean[c] * scale;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) y[o + i] = x[o + i] * scale + shift;
      }
    }
  }

  /** Composed from binary and sumTo on purpose: a backend that accelerates those accelerates this. */
  batchNormEvalBackward(
    dy: Storage,
    x: Storage,
    gammaH: Storage | null,
    meanH: Storage,
    varianceH: Storage,
    dx: Storage | null,
    dgamma: Storage | null,
    N: number,
    C: number,
    HW: number,
    eps: number,
  ): void {
    // y = xhat*gamma + beta, xhat = (x - mean)*inv with per-channel constants. The views are
    // used up before this.alloc, which may grow a backend's memory.
    const gamma = gammaH ? this.view(gammaH) : null,
      mean = this.view(meanH),
      variance = this.view(varianceH);
    const inv = new Float32Array(C),
      negMean = new Float32Array(C),
      scale = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      inv[c] = 1 / Math.sqrt(variance[c] + eps);
      negMean[c] = -mean[c];
      scale[c] = (gamma ? gamma[c] : 1) * inv[c];
    }
    const sh = [N, C, HW],
      ch = [1, C, 1];
    if (dx) this.binary('mul', dy, sh, scale, ch, dx, sh);
    if (dgamma) {
      const t = this.alloc(N * C * HW);
      this.binary('add', x, sh, negMean, ch, t, sh);
      this.binary('mul', t, sh, inv, ch, t, sh);
      this.binary('mul', t, sh, dy, sh, t, sh);
      this.sumTo(t, sh, dgamma, ch);
      this.free(t);
    }
  }

  batchNormUpdateStats(runningMeanH: Storage, runningVarH: Storage, batchMeanH: Storage, batchVarH: Storage, momentum: number, count: number): void {
    const runningMean = this.view(runningMeanH);
    const runningVar = this.view(runningVarH);
    const batchMean = this.view(batchMeanH);
    const batchVar = this.view(batchVarH);
    for (let c = 0; c < runningMean.length; c++) {
      runningMean[c] = (1 - momentum) * runningMean[c] + momentum * batchMean[c];
      runningVar[c] = (1 - momentum) * runningVar[c] + momentum * batchVar[c] * (count / (count - 1));
    }
  }

  batchNormTrainBackward(
    dyH: Storage,
    xH: Storage,
    gammaH: Storage | null,
    saveMeanH: Storage,
    saveInvStdH: Storage,
    dxH: Storage,
    dgammaH: Storage | null,
    dbetaH: Storage | null,
    N: number,
    C: number,
    HW: number,
  ): void {
    const dy = this.view(dyH);
    const x = this.view(xH);
    const gamma = gammaH ? this.view(gammaH) : null;
    const saveMean = this.view(saveMeanH);
    const saveInvStd = this.view(saveInvStdH);
    const dx = this.view(dxH);
    const dgamma = dgammaH ? this.view(dgammaH) : null;
    const dbeta = dbetaH ? this.view(dbetaH) : null;
    const M = N * HW;
    for (let c = 0; c < C; c++) {
      const mean = saveMean[c],
        invStd = saveInvStd[c];
      let sdy = 0,
        sdyxh = 0;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) {
          sdy += dy[o + i];
          sdyxh += dy[o + i] * (x[o + i] - mean) * invStd;
        }
      }
      if (dgamma) dgamma[c] = sdyxh;
      if (dbeta) dbeta[c] = sdy;
      // dx = g*invStd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat))
      const g = gamma ? gamma[c] : 1;
      const k = (g * invStd) / M;
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * HW;
        for (let i = 0; i < HW; i++) {
          const xh = (x[o + i] - mean) * invStd;
          dx[o + i] = k * (M * dy[o + i] - sdy - xh * sdyxh);
        }
      }
    }
  }

  maxPool2d(xH: Storage, yH: Storage, p: Pool2dParams): void {
    const x = this.view(xH);
    const y = this.view(yH);
    const { N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, OH, OW } = p;
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let m = -Infinity;
          for (let i = 0; i < kH; i++) {
            const ih = oh * sH - pH + i * dH;
            if (ih < 0 || ih >= H) continue;
            for (let j = 0; j < kW; j++) {
              const iw = ow * sW - pW + j * dW;
              if (iw < 0 || iw >= W) continue;
              const v = x[xo + ih * W + iw];
              if (v > m || Number.isNaN(v)) m = v;
            }
          }
          y[yo + oh * OW + ow] = m;
        }
      }
    }
  }

  maxPool2dBackward(xH: Storage, dyH: Storage, dxH: Storage, p: Pool2dParams): void {
    const x = this.view(xH);
    const dy = this.view(dyH);
    const dx = this.view(dxH);
    const { N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, OH, OW } = p;
    dx.fill(0, 0, N * C * H * W);
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let m = -Infinity,
            at = -1;
          for (let i = 0; i < kH; i++) {
            const ih = oh * sH - pH + i * dH;
            if (ih < 0 || ih >= H) continue;
            for (let j = 0; j < kW; j++) {
              const iw = ow * sW - pW + j * dW;
              if (iw < 0 || iw >= W) continue;
              const v = x[xo + ih * W + iw];
              if (v > m || at < 0 || Number.isNaN(v)) {
                m = v;
                at = ih * W + iw;
              }
            }
          }
          if (at >= 0) dx[xo + at] += dy[yo + oh * OW + ow];
        }
      }
    }
  }

  avgPool2d(xH: Storage, yH: Storage, p: Pool2dParams): void {
    const x = this.view(xH);
    const y = this.view(yH);
    const { N, C, H, W, kH, kW, sH, sW, pH, pW, OH, OW, countIncludePad } = p;
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const h0 = oh * sH - pH,
            w0 = ow * sW - pW;
          const h1 = Math.min(h0 + kH, H + pH),
            w1 = Math.min(w0 + kW, W + pW);
          const padCount = (h1 - h0) * (w1 - w0);
          const hs = Math.max(h0, 0),
            ws = Math.max(w0, 0),
            he = Math.min(h1, H),
            we = Math.min(w1, W);
          let s = 0;
          for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) s += x[xo + ih * W + iw];
          const div = countIncludePad ? padCount : (he - hs) * (we - ws);
          y[yo + oh * OW + ow] = s / div;
        }
      }
    }
  }

  avgPool2dBackward(dyH: Storage, dxH: Storage, p: Pool2dParams): void {
    const dy = this.view(dyH);
    const dx = this.view(dxH);
    const { N, C, H, W, kH, kW, sH, sW, pH, pW, OH, OW, countIncludePad } = p;
    dx.fill(0, 0, N * C * H * W);
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const h0 = oh * sH - pH,
            w0 = ow * sW - pW;
          const h1 = Math.min(h0 + kH, H + pH),
            w1 = Math.min(w0 + kW, W + pW);
          const padCount = (h1 - h0) * (w1 - w0);
          const hs = Math.max(h0, 0),
            ws = Math.max(w0, 0),
            he = Math.min(h1, H),
            we = Math.min(w1, W);
          const div = countIncludePad ? padCount : (he - hs) * (we - ws);
          const g = dy[yo + oh * OW + ow] / div;
          for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) dx[xo + ih * W + iw] += g;
        }
      }
    }
  }

  adaptiveAvgPool2d(xH: Storage, yH: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    const x = this.view(xH);
    const y = this.view(yH);
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        const hs = Math.floor((oh * H) / OH),
          he = Math.ceil(((oh + 1) * H) / OH);
        for (let ow = 0; ow < OW; ow++) {
          const ws = Math.floor((ow * W) / OW),
            we = Math.ceil(((ow + 1) * W) / OW);
          let s = 0;
          for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) s += x[xo + ih * W + iw];
          y[yo + oh * OW + ow] = s / ((he - hs) * (we - ws));
        }
      }
    }
  }

  adaptiveAvgPool2dBackward(dyH: Storage, dxH: Storage, N: number, C: number, H: number, W: number, OH: number, OW: number): void {
    const dy = this.view(dyH);
    const dx = this.view(dxH);
    dx.fill(0, 0, N * C * H * W);
    for (let nc = 0; nc < N * C; nc++) {
      const xo = nc * H * W,
        yo = nc * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        const hs = Math.floor((oh * H) / OH),
          he = Math.ceil(((oh + 1) * H) / OH);
        for (let ow = 0; ow < OW; ow++) {
          const ws = Math.floor((ow * W) / OW),
            we = Math.ceil(((ow + 1) * W) / OW);
          const g = dy[yo + oh * OW + ow] / ((he - hs) * (we - ws));
          for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) dx[xo + ih * W + iw] += g;
        }
      }
    }
  }

  unary(op: UnaryOp, xH: Storage, yH: Storage): void {
    const x = this.view(xH);
    const y = this.view(yH);
    const n = x.length;
    switch (op) {
      case 'neg':
        for (let i = 0; i < n; i++) y[i] = -x[i];
        break;
      case 'exp':
        for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]);
        break;
      case 'log':
        for (let i = 0; i < n; i++) y[i] = Math.log(x[i]);
        break;
      case 'sqrt':
        for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]);
        break;
      case 'abs':
        for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]);
        break;
      case 'relu':
        for (let i = 0; i < n; i++) {
          const v = x[i];
          y[i] = v < 0 ? 0 : v;
        }
        break; // NaN stays NaN, as in PyTorch
      case 'sigmoid':
        for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-x[i]));
        break;
      case 'tanh':
        for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]);
        break;
      default:
        throw new Error(`unknown unary op ${op as string}`);
    }
  }

  binary(op: BinaryOp, aH: Storage, aShape: readonly number[], bH: Storage, bShape: readonly number[], outH: Storage, outShape: readonly number[]): void {
    const a = this.view(aH);
    const b = this.view(bH);
    const out = this.view(outH);
    const f = BINARY[op];
    const n = out.length;
    if (a.length === n && b.length === n) {
      for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
      return;
    }
    if (b.length === 1 && a.length === n) {
      const bv = b[0];
      for (let i = 0; i < n; i++) out[i] = f(a[i], bv);
      return;
    }
    // General broadcast: walk the output index, keeping broadcast-aware offsets into a and b.
    const rank = outShape.length;
    const as = bstrides(aShape),
      bs = bstrides(bShape);
    const idx = new Array<number>(rank).fill(0);
    let ao = 0,
      bo = 0;
    for (let i = 0; i < n; i++) {
      out[i] = f(a[ao], b[bo]);
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        ao += as[d];
        bo += bs[d];
        if (idx[d] < outShape[d]) break;
        ao -= as[d] * idx[d];
        bo -= bs[d] * idx[d];
        idx[d] = 0;
      }
    }
  }

  affine(xH: Storage, yH: Storage, alpha: number, beta: number): void {
    const x = this.view(xH);
    const y = this.view(yH);
    for (let i = 0; i < x.length; i++) y[i] = x[i] * alpha + beta;
  }

  reluBackward(dyH: Storage, yH: Storage, dxH: Storage): void {
    const dy = this.view(dyH);
    const y = this.view(yH);
    const dx = this.view(dxH);
    // PyTorch's threshold_backward: zero where y <= 0, so a NaN output passes its gradient on
    for (let i = 0; i < dy.length; i++) dx[i] = y[i] <= 0 ? 0 : dy[i];
  }

  unaryBackward(op: 'abs' | 'sigmoid' | 'tanh', dyH: Storage, xH: Storage, yH: Storage, dxH: Storage): void {
    const dy = this.view(dyH);
    const x = this.view(xH);
    const y = this.view(yH);
    const dx = this.view(dxH);
    const n = dy.length;
    switch (op) {
      case 'abs':
        for (let i = 0; i < n; i++) dx[i] = dy[i] * Math.sign(x[i]);
        break;
      case 'sigmoid':
        for (let i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
        break;
      case 'tanh':
        for (let i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
        break;
      default:
        throw new Error(`no backward kernel for unary op ${op as string}`);
    }
  }

  maxMinBackward(dyH: Storage, aH: Storage, aShape: readonly number[], yH: Storage, yShape: readonly number[], daH: Storage, dbH: Storage): void {
    const dy = this.view(dyH);
    const a = this.view(aH);
    const y = this.view(yH);
    const da = this.view(daH);
    const db = this.view(dbH);
    const rank = yShape.length,
      as = bstrides(aShape);
    const idx = new Array<number>(rank).fill(0);
    let ao = 0;
    for (let i = 0; i < y.length; i++) {
      const selA = y[i] === a[ao];
      da[i] = selA ? dy[i] : 0;
      db[i] = selA ? 0 : dy[i];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        ao += as[d];
        if (idx[d] < yShape[d]) break;
        ao -= as[d] * idx[d];
        idx[d] = 0;
      }
    }
  }

  transpose2d(xH: Storage, yH: Storage, rows: number, cols: number): void {
    const x = this.view(xH);
    const y = this.view(yH);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) y[j * rows + i] = x[i * cols + j];
  }

  addInPlace(yH: Storage, xH: Storage): void {
    const y = this.view(yH);
    const x = this.view(xH);
    for (let i = 0; i < y.length; i++) y[i] += x[i];
  }

  sumTo(xH: Storage, shape: readonly number[], outH: Storage, outShape: readonly number[]): void {
    const x = this.view(xH);
    const out = this.view(outH);
    out.fill(0, 0, out.length);
    const rank = shape.length;
    const os = bstrides(outShape);
    const idx = new Array<number>(rank).fill(0);
    let oo = 0;
    const acc = new Float64Array(out.length);
    for (let i = 0; i < x.length; i++) {
      acc[oo] += x[i];
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        oo += os[d];
        if (idx[d] < shape[d]) break;
        oo -= os[d] * idx[d];
        idx[d] = 0;
      }
    }
    for (let i = 0; i < out.length; i++) out[i] = acc[i];
  }

  softmax(xH: Storage, yH: Storage, rows: number, cols: number, log: boolean): void {
    const x = this.view(xH);
    const y = this.view(yH);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let m = -Infinity;
      for (let c = 0; c < cols; c++) if (x[o + c] > m) m = x[o + c];
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(x[o + c] - m);
      if (log) {
        const lse = m + Math.log(s);
        for (let c = 0; c < cols; c++) y[o + c] = x[o + c] - lse;
      } else {
        for (let c = 0; c < cols; c++) y[o + c] = Math.exp(x[o + c] - m) / s;
      }
    }
  }

  softmaxBackward(dyH: Storage, yH: Storage, dxH: Storage, rows: number, cols: number, log: boolean): void {
    const dy = this.view(dyH);
    const y = this.view(yH);
    const dx = this.view(dxH);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0;
      if (log) {
        for (let c = 0; c < cols; c++) s += dy[o + c];
        for (let c = 0; c < cols; c++) dx[o + c] = dy[o + c] - Math.exp(y[o + c]) * s;
      } else {
        for (let c = 0; c < cols; c++) s += dy[o + c] * y[o + c];
        for (let c = 0; c < cols; c++) dx[o + c] = y[o + c] * (dy[o + c] - s);
      }
    }
  }

  argmax(xH: Storage, outH: Storage, rows: number, cols: number): void {
    const x = this.view(xH);
    const out = this.view(outH);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let b = 0;
      for (let c = 1; c < cols; c++) if (x[o + c] > x[o + b]) b = c;
      out[r] = b;
    }
  }

  softmaxCrossEntropy(logitsH: Storage, targets: Int32Array, probsH: Storage, lossH: Storage, N: number, C: number, labelSmoothing: number): void {
    const logits = this.view(logitsH);
    const probs = this.view(probsH);
    const loss = this.view(lossH);
    let total = 0;
    for (let r = 0; r < N; r++) {
      const o = r * C;
      let m = -Infinity;
      for (let c = 0; c < C; c++) if (logits[o + c] > m) m = logits[o + c];
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(logits[o + c] - m);
      const lse = m + Math.log(s);
      let sumLogp = 0;
      for (let c = 0; c < C; c++) {
        const lp = logits[o + c] - lse;
        sumLogp += lp;
        probs[o + c] = Math.exp(lp);
      }
      const t = targets[r];
      total += -(1 - labelSmoothing) * (logits[o + t] - lse) - (labelSmoothing / C) * sumLogp;
    }
    loss[0] = total / N;
  }

  softmaxCrossEntropyBackward(probsH: Storage, targets: Int32Array, dlossH: Storage, dlogitsH: Storage, N: number, C: number, labelSmoothing: number): void {
    const probs = this.view(probsH);
    const dloss = this.view(dlossH);
    const dlogits = this.view(dlogitsH);
    const s = dloss[0] / N,
      u = labelSmoothing / C;
    for (let i = 0; i < N; i++) {
      const t = targets[i];
      for (let c = 0; c < C; c++) dlogits[i * C + c] = (probs[i * C + c] - u - (c === t ? 1 - labelSmoothing : 0)) * s;
    }
  }

  subsamplePadChannels(
    xH: Storage,
    yH: Storage,
    N: number,
    C: number,
    H: number,
    W: number,
    stride: number,
    padBefore: number,
    padAfter: number,
    backward: boolean,
  ): void {
    const x = this.view(xH);
    const y = this.view(yH);
    const OH = Math.ceil(H / stride),
      OW = Math.ceil(W / stride),
      OC = C + padBefore + padAfter;
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < OH; h++)
          for (let w = 0; w < OW; w++) {
            const xi = ((n * C + c) * H + h * stride) * W + w * stride,
              yi = ((n * OC + c + padBefore) * OH + h) * OW + w;
            if (backward) x[xi] = y[yi];
            else y[yi] = x[xi];
          }
  }
}

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (a > b || Number.isNaN(a) ? a : b),
  min: (a, b) => (a < b || Number.isNaN(a) ? a : b),
};

/** Strides of a contiguous shape, with 0 where the dimension is 1 (broadcast). */
function bstrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

/** C[M,N] = op(A) @ op(B) (+ C when accumulate) on arrays: RefBackend.gemm, and the convolutions' inner step. */
function gemmF32(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  accumulate: boolean,
): void {
  if (!accumulate) C.fill(0, 0, M * N);
  // i-k-j order keeps the innermost loop contiguous in B and C when B is not transposed.
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const a = transA ? A[k * M + i] : A[i * K + k];
      if (a === 0) continue;
      if (transB) {
        for (let j = 0; j < N; j++) row[j] += a * B[j * K + k];
      } else {
        const bo = k * N;
        for (let j = 0; j < N; j++) row[j] += a * B[bo + j];
      }
    }
    const co = i * N;
    for (let j = 0; j < N; j++) C[co + j] += row[j];
  }
}
