// WebGPU types (GPUDevice, GPUBuffer, ...) for every build of src/, including the browser one (web/tsconfig.json),
// which never reaches the npm package `webgpu` whose typings would otherwise bring them.
/// <reference types="@webgpu/types" />
