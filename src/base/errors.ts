// Error classes. Every error a user can cause by bad input is a ResnetError subclass, so the CLI
// can print its one-line message without a stack trace and exit non-zero.

export class ResnetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor shape or argument that an op cannot accept. */
export class ShapeError extends ResnetError {}

/** A file that does not parse (malformed .npy, .safetensors, .pth, IDX, ONNX, image). */
export class FormatError extends ResnetError {}

/** A state dict that does not fit a model: missing/unexpected keys, shape mismatches. */
export class StateDictError extends ResnetError {}

/** An unknown name (model, backend, preset, weight set) or an invalid option value. */
export class ConfigError extends ResnetError {}

/** A pickle that tried to reach a global outside the allow-list. */
export class UnsafePickleError extends FormatError {}
