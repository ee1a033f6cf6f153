//! Patience-based early stopping on the validation loss (MODEL.md section 3). The stopper
//! only decides; it remembers the best epoch so the trainer can keep (or restore) the
//! parameters of that epoch rather than the last ones.

use serde::{Deserialize, Serialize};

/// Early-stopping settings; part of a run's config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Stop after this many consecutive epochs without improvement (the Keras and
    /// PyTorch Lightning convention, so a paper's setting carries over; 0 and 1 both stop
    /// at the first epoch that does not improve).
    pub patience: usize,
    /// An epoch improves only if its loss is below `best - min_delta`, so that noise-level
    /// decreases do not keep a run alive.
    #[serde(default)]
    pub min_delta: f64,
}

/// What to do after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The loss is the best so far: keep these parameters.
    Improved,
    /// No improvement, patience left.
    Continue,
    /// Patience exhausted: stop and restore the best epoch's parameters.
    Stop,
}

/// Tracks the validation loss over epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopper {
    config: EarlyStopping,
    best: Option<(usize, f64)>,
    since_best: usize,
}

impl EarlyStopper {
    pub fn new(config: EarlyStopping) -> Self {
        EarlyStopper {
            config,
            best: None,
            since_best: 0,
        }
    }

    /// Records epoch `epoch`'s validation loss. A non-finite loss never improves (a
    /// diverged epoch counts against patience instead of becoming the best).
    pub fn observe(&mut self, epoch: usize, loss: f64) -> Decision {
        let improved = loss.is_finite()
            && match self.best {
                None => true,
                Some((_, best)) => loss < best - self.config.min_delta,
            };
        if improved {
            self.best = Some((epoch, loss));
            self.since_best = 0;
            return Decision::Improved;
        }
        self.since_best += 1;
        if self.since_best >= self.config.patience {
            Decision::Stop
        } else {
            Decision::Continue
        }
    }

    /// The best epoch and its loss so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    /// Epochs since the best one.
    pub fn epochs_since_best(&self) -> usize {
        self.since_best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_and_remembers_the_best() {
        let mut s = EarlyStopper::new(EarlyStopping {
            patience: 2,
            min_delta: 0.0,
        });
        assert_eq!(s.observe(0, 1.0), Decision::Improved);
        assert_eq!(s.observe(1, 0.5), Decision::Improved);
        assert_eq!(s.observe(2, 0.6), Decision::Continue);
        assert_eq!(s.observe(3, 0.4), Decision::Improved);
        assert_eq!(s.observe(4, 0.4), Decision::Continue);
        assert_eq!(s.observe(5, 0.45), Decision::Stop);
        assert_eq!(s.best(), Some((3, 0.4)));
        assert_eq!(s.epochs_since_best(), 2);
    }

    #[test]
    fn min_delta_and_non_finite_losses_do_not_improve() {
        let mut s = EarlyStopper::new(EarlyStopping {
            patience: 2,
            min_delta: 0.1,
        });
        assert_eq!(s.observe(0, f64::NAN), Decision::Continue);
        assert_eq!(s.best(), None);
        assert_eq!(s.observe(1, 1.0), Decision::Improved);
        assert_eq!(s.observe(2, 0.95), Decision::Continue, "within min_delta");
        assert_eq!(s.observe(3, f64::INFINITY), Decision::Stop);
        assert_eq!(s.best(), Some((1, 1.0)));
        let zero = EarlyStopping {
            patience: 0,
            min_delta: 0.0,
        };
        let mut s = EarlyStopper::new(zero);
        s.observe(0, 1.0);
        assert_eq!(s.observe(1, 1.0), Decision::Stop);
    }

    #[test]
    fn config_serde() {
        let c: EarlyStopping = serde_json::from_str(r#"{"patience": 5}"#).unwrap();
        assert_eq!(
            c,
            EarlyStopping {
                patience: 5,
                min_delta: 0.0
            }
        );
    }
}
