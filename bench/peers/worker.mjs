// Worker entry for bench/peers/host.ts: worker threads do not inherit tsx's loader hooks in
// Node 20, so register them here before importing the TypeScript host.
import { register } from 'tsx/esm/api';

register();
await import('./host.ts');
