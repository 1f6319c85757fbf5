/**
 * Placeholder: the kernels that make the wasm backend train are being built
 * (see issue 3). Until then, wasm can run inference only.
 */
export interface WasmKernelOptions {
  threads: number;
}

export function registerWasmTrainingKernels(_opts: WasmKernelOptions): void {}
