// Small DOM helpers shared by the views: element building, the engine worker client, image input
// (drop, paste, pick, camera), decoding to RGBA, and a line chart. No framework.
import type { Reply, Rgba, TrainEvent } from './protocol.js';

type Attrs = Record<string, string | number | boolean | ((e: Event) => void)>;

/** el('button', { class: 'x', onclick: f }, 'text', child) */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...kids: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') e.addEventListener(k.replace(/^on/, ''), v);
    else if (typeof v === 'boolean') {
      if (v) e.setAttribute(k, '');
    } else e.setAttribute(k, String(v));
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

/** A client for one engine worker (worker.js next to app.js). */
export class Engine {
  private readonly w: Worker;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onEvent: (e: TrainEvent) => void = () => {};

  constructor() {
    this.w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.w.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      if ('event' in r) return this.onEvent(r.event);
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (r.ok) p?.resolve(r.result);
      else p?.reject(new Error(r.error));
    };
    this.w.onerror = (e) => {
      e.preventDefault();
      const err = new Error(`the engine worker failed: ${e.message || 'could not start it'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  call<T>(op: string, args?: unknown, transfer: Transferable[] = []): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.w.postMessage({ id, op, args }, transfer);
    });
  }
}

/** Threads to ask for: several only where shared memory works (cross-origin isolated). */
export function defaultThreads(): number {
  return crossOriginIsolated ? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4)) : 1;
}

/** Decode an image file or blob to RGBA, the longer side at most `maxSide` pixels. */
export async function decodeImage(blob: Blob, maxSide = 512): Promise<Rgba> {
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(blob);
  } catch {
    throw new Error(`${(blob as File).name ?? 'the image'}: not an image this browser can decode`);
  }
  return fromSource(bmp, bmp.width, bmp.height, maxSide);
}

export function fromSource(src: CanvasImageSource, w0: number, h0: number, maxSide = 512): Rgba {
  const s = Math.min(1, maxSide / Math.max(w0, h0));
  const w = Math.max(1, Math.round(w0 * s)),
    h = Math.max(1, Math.round(h0 * s));
  const c = new OffscreenCanvas(w, h);
  const g = c.getContext('2d')!;
  g.drawImage(src, 0, 0, w, h);
  return { data: g.getImageData(0, 0, w, h).data, w, h };
}

/** Paint RGBA pixels into a canvas (for previews). */
export function showRgba(canvas: HTMLCanvasElement, px: Rgba): void {
  canvas.width = px.w;
  canvas.height = px.h;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(px.data), px.w, px.h), 0, 0);
}

/**
 * A drop zone that also opens a file picker on click/Enter. `accept` filters the picker; every
 * dropped or picked file is passed on (folders via webkitGetAsEntry, with their relative paths).
 */
export function dropZone(
  label: string,
  accept: string,
  multiple: boolean,
  onFiles: (files: File[]) => void,
  opts: { folder?: boolean; id?: string } = {},
): HTMLElement {
  const input = el('input', { type: 'file', accept, hidden: true, ...(multiple ? { multiple: true } : {}), ...(opts.id ? { id: opts.id } : {}) });
  input.addEventListener('change', () => {
    if (input.files?.length) onFiles([...input.files]);
    input.value = '';
  });
  const zone = el('div', { class: 'drop', tabindex: 0, role: 'button' }, label, input);
  zone.addEventListener('click', (e) => {
    if (e.target !== input) input.click();
  });
  zone.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter' || (e as KeyboardEvent).key === ' ') input.click();
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const dt = (e as DragEvent).dataTransfer;
    if (!dt) return;
    const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
    if (opts.folder && entries.some((x) => x.isDirectory)) onFiles(await filesOfEntries(entries));
    else onFiles([...dt.files]);
  });
  return zone;
}

/** The files under dropped folders, each with `webkitRelativePath`-like `relPath`. */
async function filesOfEntries(entries: FileSystemEntry[]): Promise<File[]> {
  const out: File[] = [];
  const walk = async (e: FileSystemEntry, path: string): Promise<void> => {
    if (e.isFile) {
      const f = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
      Object.defineProperty(f, 'relPath', { value: path + e.name });
      out.push(f);
    } else if (e.isDirectory) {
      const r = (e as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => r.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const c of batch) await walk(c, `${path}${e.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

/** The path of a file inside a dropped or picked folder ('' for a plain file). */
export function relPath(f: File): string {
  return (f as File & { relPath?: string }).relPath ?? f.webkitRelativePath ?? '';
}

/** A camera preview with a snapshot button; calls onShot with the frame. */
export function cameraButton(onShot: (px: Rgba) => void, onError: (m: string) => void): HTMLElement {
  const video = el('video', { playsinline: true, muted: true, class: 'camera', hidden: true });
  let stream: MediaStream | null = null;
  const shot = el(
    'button',
    {
      hidden: true,
      onclick: () => {
        onShot(fromSource(video, video.videoWidth, video.videoHeight));
      },
    },
    'Take picture',
  );
  const toggle = el(
    'button',
    {
      onclick: async () => {
        if (stream) {
          stream.getTracks().forEach((t) => t.stop());
          stream = null;
          video.hidden = shot.hidden = true;
          toggle.textContent = 'Camera';
          return;
        }
        try {
          stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
        } catch (e) {
          return onError(`camera: ${(e as Error).message}`);
        }
        video.srcObject = stream;
        await video.play();
        video.hidden = shot.hidden = false;
        toggle.textContent = 'Close camera';
      },
    },
    'Camera',
  );
  return el('span', { class: 'camera-box' }, toggle, shot, video);
}

/** A line chart of one or two series on a canvas (y from the data's range, x = step). */
export function drawChart(c: HTMLCanvasElement, series: { values: number[]; color: string; label: string }[], steps: number, yFixed?: [number, number]): void {
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 300,
    h = c.clientHeight || 150;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  const g = c.getContext('2d')!;
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const [lo, hi] = yFixed ?? (all.length ? [Math.min(0, ...all), Math.max(...all) * 1.05 || 1] : [0, 1]);
  const L = 36,
    R = 8,
    T = 8,
    B = 18;
  g.strokeStyle = '#ccd';
  g.fillStyle = '#556';
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = T + ((h - T - B) * i) / 4;
    g.beginPath();
    g.moveTo(L, y);
    g.lineTo(w - R, y);
    g.stroke();
    g.fillText((hi - ((hi - lo) * i) / 4).toFixed(2), 2, y + 4);
  }
  g.fillText(`step ${steps}`, w - R - 52, h - 4);
  const x = (i: number) => L + ((w - L - R) * i) / Math.max(1, steps - 1);
  const y = (v: number) => T + (h - T - B) * (1 - (v - lo) / (hi - lo || 1));
  for (const s of series) {
    g.strokeStyle = s.color;
    g.lineWidth = 1.5;
    g.beginPath();
    s.values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
  }
  let lx = L + 6;
  for (const s of series) {
    g.fillStyle = s.color;
    g.fillRect(lx, T + 4, 10, 3);
    g.fillStyle = '#334';
    g.fillText(s.label, lx + 14, T + 9);
    lx += g.measureText(s.label).width + 30;
  }
}

/** Top-k as labelled bars. */
export function topList(top: { label: string; prob: number }[]): HTMLElement {
  return el(
    'ol',
    { class: 'top' },
    ...top.map((t) =>
      el(
        'li',
        {},
        el('span', { class: 'label' }, t.label),
        el('span', { class: 'bar' }, el('span', { style: `width:${(100 * t.prob).toFixed(1)}%` })),
        el('span', { class: 'prob' }, `${(100 * t.prob).toFixed(1)}%`),
      ),
    ),
  );
}

/** Trigger a download of bytes or text. */
export function download(name: string, content: Uint8Array | string, type: string): void {
  const a = el('a', { href: URL.createObjectURL(new Blob([content as BlobPart], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

export function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '–';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s % 60)).padStart(2, '0')}`;
}
