/**
 * Debian's python3-onnx as an independent reader of the files svhn writes: onnx.checker
 * (full_check: the graph's types and shapes inferred op by op) and what the file says about
 * itself. Tests that use it skip where /usr/bin/python3 cannot import onnx
 * (`apt-get install python3-onnx`).
 */
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

export const HAS_ONNX_CHECKER = spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

export interface CheckedOnnx {
  irVersion: number;
  opset: number;
  metadata: Record<string, string>;
  input: { name: string; dims: Array<number | string> };
  output: { name: string; dims: Array<number | string> };
  ops: string[];
}

const SCRIPT = `
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
dims = lambda v: [d.dim_value if d.HasField('dim_value') else d.dim_param for d in v.type.tensor_type.shape.dim]
print(json.dumps({
  'irVersion': m.ir_version,
  'opset': [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')][0],
  'metadata': {p.key: p.value for p in m.metadata_props},
  'input': {'name': m.graph.input[0].name, 'dims': dims(m.graph.input[0])},
  'output': {'name': m.graph.output[0].name, 'dims': dims(m.graph.output[0])},
  'ops': [n.op_type for n in m.graph.node],
}))
`;

/** Runs onnx.checker on the file and reads back its header; throws with the checker's message when it refuses it. */
export function checkOnnx(path: string): CheckedOnnx {
  const r = spawnSync(PYTHON, ['-c', SCRIPT, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`onnx.checker refused ${path}: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as CheckedOnnx;
}
