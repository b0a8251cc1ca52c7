// `node --import ./test/webgpu-hide-package.mjs`: the npm package `webgpu` cannot be found, as
// where it is not installed (it is an optional peer), so the backend's error for that is tested.
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  if (specifier === 'webgpu') throw Object.assign(new Error("Cannot find package 'webgpu' imported from " + context.parentURL), { code: 'ERR_MODULE_NOT_FOUND' });
  return next(specifier, context);
}`;
register('data:text/javascript,' + encodeURIComponent(hook));
