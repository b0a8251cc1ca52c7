// Placeholder for a kernel not yet written (removed when the last kernel lands).
export function notYet(name: string, ...args: unknown[]): never {
  void args;
  throw new Error(`webgpu backend: ${name} is not implemented yet`);
}
