/**
 * The notebook's Keras callbacks, done properly (tfjs has no ModelCheckpoint, and its
 * earlyStopping ignores restoreBestWeights):
 *   - EarlyStopping(monitor='val_loss', patience, restore_best_weights=True)
 *   - ModelCheckpoint(monitor='val_accuracy', save_best_only=True): the weights we keep
 * Both hold weight snapshots as JS Float32Arrays (not tensors: nothing to dispose, and they
 * go straight into a checkpoint). Their state is plain data so a resumed run continues them.
 */
import type * as tf from '@tensorflow/tfjs';
import { captureWeights, type WeightSnapshot } from './weights.js';

export interface EarlyStoppingState {
  patience: number;
  bestLoss: number; // Infinity before the first epoch
  bestEpoch: number; // 0 before the first epoch
  wait: number; // epochs since the last improvement
  stoppedEpoch: number | null;
}

/** Stops after `patience` epochs without a lower val_loss; keeps the best weights to restore. */
export class EarlyStopping {
  state: EarlyStoppingState;
  best: WeightSnapshot | null = null;

  constructor(patience: number, state?: EarlyStoppingState, best?: WeightSnapshot | null) {
    this.state = state ? { ...state, patience } : { patience, bestLoss: Infinity, bestEpoch: 0, wait: 0, stoppedEpoch: null };
    this.best = best ?? null;
  }

  /** Call after each epoch; returns true when training should stop. */
  update(epoch: number, valLoss: number, model: tf.LayersModel): boolean {
    if (valLoss < this.state.bestLoss) {
      this.state.bestLoss = valLoss;
      this.state.bestEpoch = epoch;
      this.state.wait = 0;
      this.best = captureWeights(model);
      return false;
    }
    this.state.wait++;
    if (this.state.wait >= this.state.patience) {
      this.state.stoppedEpoch = epoch;
      return true;
    }
    return false;
  }
}

export interface BestModelState {
  bestAcc: number; // -Infinity before the first epoch
  bestEpoch: number;
}

/** Keeps the weights of the epoch with the highest val_acc (first one wins ties, like Keras). */
export class BestModelKeeper {
  state: BestModelState;
  best: WeightSnapshot | null = null;

  constructor(state?: BestModelState, best?: WeightSnapshot | null) {
    this.state = state ? { ...state } : { bestAcc: -Infinity, bestEpoch: 0 };
    this.best = best ?? null;
  }

  update(epoch: number, valAcc: number, model: tf.LayersModel): boolean {
    if (valAcc > this.state.bestAcc) {
      this.state = { bestAcc: valAcc, bestEpoch: epoch };
      this.best = captureWeights(model);
      return true;
    }
    return false;
  }
}
