//! Upper bounds of the counts a user gives `ablate` (flags and manifest keys). Each is
//! checked before anything is allocated in proportion to it, and named in the error, so a
//! typo such as `seeds = 100000000000` is a one-line error instead of an allocation
//! failure that aborts the process. The library crates bound their own configs
//! (`ModelConfig`, `StageConfig`, `SimulationConfig`) in their `validate`.

/// Worker threads of `--jobs`, `--threads` and `--cpus`.
pub const MAX_JOBS: usize = 1024;
/// Array tasks of `ablate slurm --shards` (and `N` of `--shard I/N`).
pub const MAX_SHARDS: usize = 100_000;
/// Replicate seeds of a manifest (`seeds = N` or a list).
pub const MAX_SEEDS: u64 = 10_000;
/// Points of a manifest's `[random]` search (`samples`).
pub const MAX_RANDOM_SAMPLES: u64 = 100_000;
/// Runs of one plan (grid points x random points x seeds): a plan holds every run's
/// resolved config, a few kB each.
pub const MAX_RUNS: u64 = 100_000;
