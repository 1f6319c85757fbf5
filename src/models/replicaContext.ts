/**
 * What a training replica's layers need to know to compute the whole batch's result from
 * their shard (src/train/replicas.ts): which rows of the batch they hold, and a way to sum
 * per-channel values over every replica. SyncBatchNormalization uses it for the batch's
 * mean and variance (and their gradients); SeededDropout for its rows of the batch's mask.
 * With no context set (one replica, inference), layers see their input as the whole batch.
 */
export interface ReplicaContext {
  /** This replica's rows of the batch: [offset, offset + size) of total. */
  offset: number;
  size: number;
  total: number;
  /** Sums `values` over the replicas, in replica order; every replica gets the same result. */
  allReduce(values: Float64Array): Float64Array;
}

let current: ReplicaContext | undefined;

export function setReplicaContext(context: ReplicaContext | undefined): void {
  current = context;
}

export function replicaContext(): ReplicaContext | undefined {
  return current;
}
