// Minimal typings for the parts of cli-progress (no bundled types) that progress.ts uses.
declare module 'cli-progress' {
  export interface Options {
    format?: string;
    stream?: NodeJS.WritableStream;
    fps?: number;
    barsize?: number;
    hideCursor?: boolean | null;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
    etaBuffer?: number;
    noTTYOutput?: boolean;
    forceRedraw?: boolean;
    barCompleteChar?: string;
    barIncompleteChar?: string;
  }
  export class SingleBar {
    constructor(opts: Options, preset?: Record<string, unknown>);
    start(total: number, startValue: number, payload?: Record<string, unknown>): void;
    update(value: number, payload?: Record<string, unknown>): void;
    setTotal(total: number): void;
    stop(): void;
  }
  export const Presets: { shades_classic: Record<string, unknown>; legacy: Record<string, unknown>; rect: Record<string, unknown> };
  const _default: { SingleBar: typeof SingleBar; Presets: typeof Presets };
  export default _default;
}
