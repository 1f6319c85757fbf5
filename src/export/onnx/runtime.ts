/**
 * Runs an .onnx file in ONNX Runtime, for export's proof and its tests. onnxruntime-web's
 * wasm build, because it installs from npm alone; onnxruntime-node's install downloads a
 * native binary, which fails where there is only the npm registry. One thread: no workers to
 * start or leave behind, and the proof is 64 images.
 */
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from '../../config.js';
import { SvhnError } from '../../errors.js';
import { ONNX_INPUT, ONNX_OUTPUT } from './fromLayers.js';

/** [count, 10] probabilities of the file on `count` NHWC images in [0, 1]. */
export async function runOnnx(file: Uint8Array, images: Float32Array, count: number): Promise<Float32Array> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  let session;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: ['wasm'] });
  } catch (e) {
    throw new SvhnError('BAD_MODEL', `ONNX Runtime refused the exported file: ${(e as Error).message}`, { cause: e });
  }
  try {
    const input = new ort.Tensor('float32', images, [count, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]);
    const out = (await session.run({ [ONNX_INPUT]: input }))[ONNX_OUTPUT];
    if (!out || out.type !== 'float32' || out.dims.join() !== `${count},${NUM_CLASSES}`) {
      throw new SvhnError('BAD_MODEL', `ONNX Runtime: expected output '${ONNX_OUTPUT}' float32 [${count}, ${NUM_CLASSES}], got ${out ? `${out.type} [${out.dims.join(', ')}]` : 'none'}`);
    }
    return Float32Array.from(out.data as Float32Array);
  } finally {
    await session.release();
  }
}
