// A console reporter for the training events (hooks.ts). The trainer only calls the hooks it is
// given (library code never writes to the console); the CLI passes a ProgressPrinter bound to its
// streams: a cli-progress bar with images/s and ETA on a terminal, plain lines otherwise.
import cliProgress, { type SingleBar } from 'cli-progress';
import type { EpochRecord, EpochStartInfo, StepInfo, TrainHooks } from './hooks.js';

export type { EpochRecord, EpochStartInfo, StepInfo, TrainHooks };

export interface PrinterOptions {
  /** Where the bar goes (default: nothing drawn). Lines go through `print`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  print: (line: string) => void;
  /** Force the bar on or off (default: stream.isTTY). */
  bar?: boolean;
  /** Minimum seconds between plain progress lines (default 30; an epoch's end always prints). */
  lineIntervalSec?: number;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** TrainHooks that draw a progress bar (TTY) or print a line now and then (pipes, CI logs). */
export class ProgressPrinter implements TrainHooks {
  private bar: SingleBar | null = null;
  private readonly useBar: boolean;
  private lastLine = 0;
  private cur: EpochStartInfo | null = null;

  constructor(private readonly o: PrinterOptions) {
    this.useBar = o.bar ?? Boolean(o.stream?.isTTY);
  }

  onEpochStart(info: EpochStartInfo): void {
    this.cur = info;
    this.lastLine = performance.now();
    if (this.useBar && this.o.stream) {
      const label = info.label ?? (info.phase === 'train' ? `epoch ${info.epoch}/${info.epochs}` : 'eval');
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.o.stream,
          format: `${label} [{bar}] {value}/{total} | loss {loss} acc {acc} | {ips} img/s | ETA {etaf}`,
          barsize: 24,
          hideCursor: null,
          clearOnComplete: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(info.steps, info.startStep, { loss: '-', acc: '-', ips: '-', etaf: '?' });
    }
  }

  onStep(s: StepInfo): void {
    if (this.bar) {
      this.bar.update(s.step, { loss: s.loss.toFixed(4), acc: s.acc.toFixed(4), ips: s.imagesPerSec.toFixed(0), etaf: formatDuration(s.etaSec) });
      return;
    }
    const now = performance.now();
    if (s.step < s.steps && now - this.lastLine < (this.o.lineIntervalSec ?? 30) * 1000) return;
    if (s.step === s.steps && s.phase === 'eval') return;
    this.lastLine = now;
    const head = s.phase === 'train' ? `epoch ${s.epoch}/${s.epochs}` : (this.cur?.label ?? 'eval');
    this.o.print(
      `${head} step ${s.step}/${s.steps} loss ${s.loss.toFixed(4)} acc ${s.acc.toFixed(4)}` +
        `${s.phase === 'train' ? ` lr ${s.lr.toPrecision(3)}` : ''} ${s.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(s.etaSec)}`,
    );
  }

  onPhaseEnd(): void {
    this.stopBar();
  }

  onEpochEnd(r: EpochRecord): void {
    this.stopBar();
    const val =
      r.val_acc !== undefined
        ? ` ${String(r.val_name ?? 'val')}_loss ${r.val_loss!.toFixed(4)} ${String(r.val_name ?? 'val')}_acc ${r.val_acc.toFixed(4)}` +
          (typeof r.val_acc_no_tta === 'number' ? ` (${String(r.val_tta)} TTA; without ${r.val_acc_no_tta.toFixed(4)})` : '')
        : '';
    this.o.print(
      `epoch ${r.epoch}: train_loss ${r.train_loss.toFixed(4)} train_acc ${r.train_acc.toFixed(4)}${val}` +
        ` (${formatDuration(r.epoch_time_s)}, ${r.images_per_s.toFixed(0)} img/s)`,
    );
  }

  onMessage(msg: string): void {
    this.stopBar();
    this.o.print(msg);
  }

  stopBar(): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
  }
}
