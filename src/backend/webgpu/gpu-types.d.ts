// WebGPU types (GPUDevice, GPUBuffer, ...) for every build of src/, including the browser one (web/tsconfig.json),
// which never reaches the npm package `webgpu` whose typings would otherwise bring them. @webgpu/types is
// a devDependency: the public .d.ts (index, browser) must not reach a GPU* type, so that users need no
// WebGPU typings; test/bundlers.test.ts type-checks a Node app that selects webgpu without them.
/// <reference types="@webgpu/types" />
