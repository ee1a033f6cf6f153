//! Data-parallel gradients of one mini-batch, the same bits at any thread count.
//!
//! A mini-batch larger than `micro_batch` rows is cut into fixed micro-batches of
//! consecutive rows (their size never depends on the thread count). Each micro-batch is
//! run forward and backward on its own tape into its own gradient buffer, on as many
//! threads as there are; the buffers are then added into the parameters' gradients in
//! micro-batch order. Every micro-batch's arithmetic, and the order of the sum, are the
//! same whichever thread ran it, so the result is bit-identical at 1, 2 or any number of
//! threads.
//!
//! The loss of the mini-batch is recovered exactly (up to rounding): a micro-batch's
//! weighted squared error is scaled by its share of the mini-batch's total weight, and the
//! soft penalty (a mean over rows) by its share of the rows, so the sum over micro-batches
//! is the mini-batch's `mse + lambda * penalty`. (With the adaptive Dormand-Prince solver
//! each micro-batch takes its own steps: a different, equally valid discretisation.)
//!
//! A mini-batch of at most `micro_batch` rows takes the plain single-tape path, exactly as
//! without this module, so settings that never cut a batch give the bits they always gave;
//! so does a mini-batch with a micro-batch of unmeasured rows only (it has no loss term).

use crate::error::TrainError;
use ionode_autodiff::{ParamStore, Tape, Var};
use ionode_model::{Batch, Electroneutrality, ForwardOptions, Model, ModelError};

/// One micro-batch's tape and gradient buffer, kept across steps (no allocation once the
/// tapes have grown).
struct Worker {
    tape: Tape,
    grads: ParamStore,
    /// The micro-batch's loss terms on `tape` after the forward pass.
    mse: Option<Var>,
    penalty: Option<Var>,
    weight: f64,
    rows: usize,
}

/// Computes mini-batch gradients, cut into micro-batches over a fixed pool of threads.
pub struct MicroBatches {
    micro_batch: usize,
    pool: Option<rayon::ThreadPool>,
    workers: Vec<Worker>,
    /// Tapes of gradient-free evaluations ([`MicroBatches::map_tapes`]).
    tapes: Vec<Tape>,
}

impl MicroBatches {
    /// `micro_batch` rows per micro-batch (`None`: never cut a batch); `threads` >= 1.
    pub fn new(micro_batch: Option<usize>, threads: usize) -> Result<Self, TrainError> {
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| {
                        TrainError::invalid("threads", threads, format!("a pool that starts ({e})"))
                    })?,
            )
        } else {
            None
        };
        Ok(MicroBatches {
            micro_batch: micro_batch.unwrap_or(usize::MAX).max(1),
            pool,
            workers: Vec::new(),
            tapes: Vec::new(),
        })
    }

    /// Whether there are threads to share work between.
    pub fn is_parallel(&self) -> bool {
        self.pool.is_some()
    }

    /// `f(i, tape)` for `i` in `0..n` on the threads, the results in order of `i`. Thread
    /// `t` takes `i = t, t + T, ...` on its own tape (kept across calls), so there are as
    /// many tapes as threads, however many chunks there are.
    pub fn map_tapes<R, F>(&mut self, n: usize, f: F) -> Vec<R>
    where
        R: Send,
        F: Fn(usize, &mut Tape) -> R + Sync,
    {
        use rayon::prelude::*;
        let threads = self
            .pool
            .as_ref()
            .map_or(1, |p| p.current_num_threads())
            .max(1);
        while self.tapes.len() < threads {
            self.tapes.push(Tape::new());
        }
        let tapes = &mut self.tapes[..threads];
        let work = |(t, tape): (usize, &mut Tape)| -> Vec<(usize, R)> {
            (t..n).step_by(threads).map(|i| (i, f(i, tape))).collect()
        };
        let parts: Vec<Vec<(usize, R)>> = match &self.pool {
            Some(pool) => install(pool, || {
                tapes
                    .par_iter_mut()
                    .with_max_len(1)
                    .enumerate()
                    .map(work)
                    .collect()
            }),
            None => tapes.iter_mut().enumerate().map(work).collect(),
        };
        let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// The loss of `batch` and its gradient in `store`'s gradients (zeroed first).
    /// `tape` is the single-tape path's tape.
    pub fn gradient(
        &mut self,
        model: &Model,
        store: &mut ParamStore,
        batch: &Batch,
        tape: &mut Tape,
    ) -> Result<f64, ModelError> {
        store.zero_grad();
        let b = batch.len();
        if b <= self.micro_batch || !every_part_weighs(batch, self.micro_batch) {
            tape.clear();
            let fwd = model.forward(tape, store, batch, ForwardOptions::default())?;
            let loss = model.loss(tape, &fwd)?;
            let value = tape.item(loss.total);
            if value.is_finite() {
                tape.backward_into(loss.total, store)
                    .map_err(ModelError::from)?;
            }
            return Ok(value);
        }
        let n = b.div_ceil(self.micro_batch);
        while self.workers.len() < n {
            self.workers.push(Worker {
                tape: Tape::new(),
                grads: store.clone(),
                mse: None,
                penalty: None,
                weight: 0.0,
                rows: 0,
            });
        }
        let micro = self.micro_batch;
        let lambda = match model.config().electroneutrality {
            Electroneutrality::Soft { lambda, .. } => lambda,
            _ => 0.0,
        };
        let shared: &ParamStore = store;
        let workers = &mut self.workers[..n];
        // Forward: each micro-batch's loss terms and weight.
        let forward = |(i, w): (usize, &mut Worker)| -> Result<(), ModelError> {
            let rows = i * micro..((i + 1) * micro).min(b);
            let part = batch.rows(rows.clone());
            w.grads.values_mut().copy_from_slice(shared.values());
            w.grads.zero_grad();
            w.tape.clear();
            let fwd = model.forward(&mut w.tape, &w.grads, &part, ForwardOptions::default())?;
            let loss = model.loss(&mut w.tape, &fwd)?;
            w.mse = Some(loss.mse);
            w.penalty = loss.penalty;
            w.weight = fwd.prepared.targets.as_ref().map_or(0.0, |t| t.weight_sum);
            w.rows = rows.len();
            Ok(())
        };
        each(self.pool.as_ref(), workers, forward)?;
        let weight: f64 = workers.iter().map(|w| w.weight).sum();
        // Backward: each micro-batch's share of the mini-batch loss.
        let backward = |(_, w): (usize, &mut Worker)| -> Result<f64, ModelError> {
            let mse = w.mse.expect("the forward pass ran");
            let mut total = w.tape.scale(mse, w.weight / weight)?;
            if let Some(p) = w.penalty {
                let p = w.tape.scale(p, lambda * w.rows as f64 / b as f64)?;
                total = w.tape.add(total, p)?;
            }
            let value = w.tape.item(total);
            if value.is_finite() {
                w.tape.backward_into(total, &mut w.grads)?;
            }
            Ok(value)
        };
        let values = each(self.pool.as_ref(), workers, backward)?;
        // Reduce in micro-batch order: the same sum at any thread count.
        for w in workers.iter() {
            store.add_grads(&w.grads);
        }
        Ok(values.iter().sum())
    }
}

/// Whether every micro-batch has a measured value to fit (a micro-batch of unmeasured
/// rows only has no loss of its own; such a batch is taken whole, on one thread).
fn every_part_weighs(batch: &Batch, micro: usize) -> bool {
    (0..batch.len()).step_by(micro).all(|start| {
        (start..(start + micro).min(batch.len())).any(|i| {
            batch.mask.row(i).iter().enumerate().any(|(j, &present)| {
                present && batch.target_weight.as_ref().is_none_or(|w| w[[i, j]] > 0.0)
            })
        })
    })
}

/// Runs `f` on every worker with its index, on the pool if there is one: the results in
/// worker order, or the first error in worker order.
/// `pool.install(op)`, but never stealing work of another pool while it waits.
///
/// Called from a worker of another rayon pool (a sweep's runs), `install` keeps that worker
/// busy with the outer pool's jobs until `op` is done. If the waiting worker holds a lock
/// those jobs need (the sweep's shared pre-trained model is built once, under a `OnceLock`,
/// by the first run that asks), a stolen job waits on it forever. So from a rayon worker
/// the pool is entered from a plain scoped thread, and the worker only blocks.
fn install<R: Send>(pool: &rayon::ThreadPool, op: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_none() {
        return pool.install(op);
    }
    std::thread::scope(|s| {
        s.spawn(|| pool.install(op))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn each<R, F>(
    pool: Option<&rayon::ThreadPool>,
    workers: &mut [Worker],
    f: F,
) -> Result<Vec<R>, ModelError>
where
    R: Send,
    F: Fn((usize, &mut Worker)) -> Result<R, ModelError> + Sync,
{
    use rayon::prelude::*;
    let results: Vec<Result<R, ModelError>> = match pool {
        Some(pool) => install(pool, || {
            workers
                .par_iter_mut()
                .with_max_len(1)
                .enumerate()
                .map(&f)
                .collect()
        }),
        None => workers.iter_mut().enumerate().map(&f).collect(),
    };
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluations_keep_one_tape_per_thread_and_their_order() {
        let mut m = MicroBatches::new(None, 3).unwrap();
        let out = m.map_tapes(100, |i, _| i * i);
        assert_eq!(out, (0..100).map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(m.tapes.len(), 3, "one tape per thread, not per chunk");
        let mut one = MicroBatches::new(None, 1).unwrap();
        assert_eq!(one.map_tapes(5, |i, _| i), vec![0, 1, 2, 3, 4]);
        assert_eq!(one.tapes.len(), 1);
    }
}
