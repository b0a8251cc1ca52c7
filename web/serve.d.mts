// Types of serve.mjs for the TypeScript tests.
export declare function startServer(o?: {
  dir?: string;
  port?: number;
  isolation?: boolean;
  extra?: Record<string, string>;
}): Promise<{ url: string; close(): Promise<void> }>;
