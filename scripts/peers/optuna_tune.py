#!/usr/bin/python3
"""Optuna's TPE driving `svhn train` through a subprocess: the peer of `svhn tune` in
`npm run bench:tune -- --real` (issue 22). Debian's python3-optuna; nothing of svhn's tune code.

Usage (scripts/bench-tune.mjs writes the config):
  /usr/bin/python3 scripts/peers/optuna_tune.py CONFIG.json

CONFIG: {"svhn": [node, bin/svhn.js], "model", "dataDir", "outDir", "budgetSec", "trials",
"seed", "space": svhn's space (tune/space.ts: name, kind float|log-float|int|choice, low, high,
step, choices), "first": trial 0's params or null, "fixed": train flags every trial shares}.

The study: TPESampler(seed) with Optuna's defaults, SuccessiveHalvingPruner(min_resource=1,
reduction_factor=3): the rungs at epochs 1, 3, 9 that svhn tune's ASHA uses. `first` is
enqueued as trial 0, as svhn tune measures train's own recipe first. Each trial is
`svhn train --json` with the trial's flags and its own seed; every epoch's val_acc (read off
train's progress lines on stderr) is reported to the pruner, and a pruned trial's train is
killed there. The value is the saved model's validation accuracy (train's --json summary), as
svhn tune's. study.optimize(timeout=budget) starts no trial after the budget, as --budget.
Prints one JSON object: Optuna's version and each trial's number, state, value, params, seconds.
"""
import json, re, shutil, subprocess, sys, time

import optuna

EPOCH = re.compile(r'^epoch (\d+)/(\d+) .*\bval_acc ([0-9.]+)')


def suggest(trial, spec):
    name, kind = spec['name'], spec['kind']
    if kind == 'choice':
        return trial.suggest_categorical(name, spec['choices'])
    if kind == 'int':
        return trial.suggest_int(name, spec['low'], spec['high'], step=spec.get('step', 1))
    if kind == 'log-float':
        return trial.suggest_float(name, spec['low'], spec['high'], log=True)
    return trial.suggest_float(name, spec['low'], spec['high'], step=spec.get('step'))


def flag_value(v):
    return repr(v) if isinstance(v, float) else str(v)


def main():
    cfg = json.load(open(sys.argv[1]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction='maximize',
        sampler=optuna.samplers.TPESampler(seed=cfg['seed']),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=0),
    )
    if cfg.get('first'):
        study.enqueue_trial(cfg['first'])
    seconds = {}

    def objective(trial):
        params = {spec['name']: suggest(trial, spec) for spec in cfg['space']}
        out = f"{cfg['outDir']}/trial-{trial.number}"
        flags = {**cfg['fixed'], **params, 'seed': cfg['seed'] * 1000 + trial.number}
        cmd = [*cfg['svhn'], 'train', '--model', cfg['model'], '--data-dir', cfg['dataDir'], '--out', out, '--force', '--json']
        for k, v in flags.items():
            cmd += [f'--{k}', flag_value(v)]
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reported = set()
        try:
            for line in proc.stderr:
                m = EPOCH.match(line)
                if not m or int(m.group(1)) in reported:
                    continue
                epoch = int(m.group(1))
                reported.add(epoch)
                trial.report(float(m.group(3)), epoch)
                sys.stderr.write(f'optuna trial {trial.number}  epoch {epoch}/{m.group(2)}  val_acc {100 * float(m.group(3)):.2f}%\n')
                if trial.should_prune():
                    proc.kill()
                    proc.wait()
                    raise optuna.TrialPruned()
            summary = proc.stdout.read()
            if proc.wait() != 0:
                raise RuntimeError(f'svhn train exited {proc.returncode}')
            return json.loads(summary)['validation']['acc']
        finally:
            seconds[trial.number] = time.time() - started
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(out + '.checkpoint', ignore_errors=True)

    study.optimize(objective, n_trials=cfg['trials'], timeout=cfg['budgetSec'], catch=(RuntimeError,))
    trials = []
    for t in study.trials:
        state = {'COMPLETE': 'complete', 'PRUNED': 'pruned', 'FAIL': 'failed'}.get(t.state.name, t.state.name.lower())
        # a pruned trial's value: its last reported epoch's, as svhn tune records it
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        trials.append({'number': t.number, 'state': state, 'value': value, 'params': t.params, 'epochs': len(t.intermediate_values), 'seconds': seconds.get(t.number)})
    print(json.dumps({'version': optuna.__version__, 'trials': trials}))


if __name__ == '__main__':
    main()
