// Dataset and transform specs of the form {module, factory} name the module to import by URL: a
// computed import(), which no bundler can follow (webpack warns, Vite cannot analyse it). Browser
// code never needs it (specs are rebuilt only inside Node's loader workers), so the import itself
// lives in Node-only modules (loader-pool.ts, loader-worker.ts), which register it here.
import { ConfigError } from '../base/errors.js';

type Importer = (url: string) => Promise<Record<string, unknown>>;
let importer: Importer | null = null;

export function setSpecModuleImporter(f: Importer): void {
  importer = f;
}

/** The module a {module, factory} spec names. */
export function importSpecModule(url: string): Promise<Record<string, unknown>> {
  if (!importer) throw new ConfigError(`cannot load ${url}: {module, factory} specs are rebuilt only in Node (import 'resnet-ts', whose data loader workers load them)`);
  return importer(url);
}
