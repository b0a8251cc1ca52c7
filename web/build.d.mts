// Types of build.mjs for the TypeScript tests.
import type { BuildResult } from 'esbuild';
export declare const DIST: string;
export declare function buildWeb(o?: { outdir?: string; minify?: boolean }): Promise<BuildResult & { metafile: NonNullable<BuildResult['metafile']> }>;
