//! Adam (Kingma & Ba 2015) over a [`ParamStore`], and global-norm gradient clipping.
//!
//! The optimiser walks the store's flat value and gradient vectors in one loop
//! ([`ParamStore::values_and_grads_mut`]); its moment vectors are allocated on the first step
//! and reused, so a training step allocates nothing here after the first.

use ionode_autodiff::ParamStore;

/// Errors of an optimiser step (nothing is updated when one is returned).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A gradient entry is NaN or infinite.
    #[error("non-finite gradient at flat index {index} ({value})")]
    NonFiniteGradient {
        /// Index in the store's flat vector.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The store has a different number of scalars than on the first step.
    #[error("the parameter store has {got} scalars, the optimiser state {expected}")]
    StoreChanged {
        /// Scalars in the optimiser's moments.
        expected: usize,
        /// Scalars in the store.
        got: usize,
    },
}

/// Adam with optional L2 weight decay (added to the gradient, as `torch.optim.Adam` does):
///
/// ```text
/// g = grad + weight_decay * p
/// m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
/// p -= lr * (m / (1 - beta1^k)) / (sqrt(v / (1 - beta2^k)) + eps)
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Denominator floor (default 1e-8).
    pub eps: f64,
    /// L2 weight decay (default 0).
    pub weight_decay: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    steps: u64,
}

impl Adam {
    /// Adam with PyTorch's defaults and learning rate `lr`.
    pub fn new(lr: f64) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            m: Vec::new(),
            v: Vec::new(),
            steps: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Forget the moments and the step count (e.g. when fine-tuning starts).
    pub fn reset(&mut self) {
        self.m.clear();
        self.v.clear();
        self.steps = 0;
    }

    /// Update `params` in place from their accumulated gradients.
    pub fn step(&mut self, params: &mut ParamStore) -> Result<(), OptimError> {
        let n = params.num_scalars();
        if self.steps == 0 {
            self.m.clear();
            self.m.resize(n, 0.0);
            self.v.clear();
            self.v.resize(n, 0.0);
        } else if self.m.len() != n {
            return Err(OptimError::StoreChanged {
                expected: self.m.len(),
                got: n,
            });
        }
        let (vals, grads) = params.values_and_grads_mut();
        if let Some(index) = grads.iter().position(|g| !g.is_finite()) {
            return Err(OptimError::NonFiniteGradient {
                index,
                value: grads[index],
            });
        }
        self.steps += 1;
        let k = self.steps as i32;
        let bc1 = 1.0 - self.beta1.powi(k);
        let bc2 = 1.0 - self.beta2.powi(k);
        let (b1, b2, wd) = (self.beta1, self.beta2, self.weight_decay);
        let step_size = self.lr / bc1;
        let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
        for (((p, &g), m), v) in vals
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            let g = g + wd * *p;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step_size * *m / (v.sqrt() * inv_sqrt_bc2 + self.eps);
        }
        Ok(())
    }
}

/// The global L2 norm of all gradients.
pub fn grad_norm(params: &ParamStore) -> f64 {
    params.grads().iter().map(|g| g * g).sum::<f64>().sqrt()
}

/// Scale all gradients so their global L2 norm is at most `max_norm`; returns the norm
/// before clipping (like `torch.nn.utils.clip_grad_norm_`). A non-finite norm is returned
/// untouched for the optimiser to refuse.
pub fn clip_grad_norm(params: &mut ParamStore, max_norm: f64) -> f64 {
    let norm = grad_norm(params);
    if norm.is_finite() && norm > max_norm && norm > 0.0 {
        let c = max_norm / norm;
        let ids: Vec<_> = params.ids().collect();
        for id in ids {
            params.grad_mut(id).iter_mut().for_each(|g| *g *= c);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        // f(p) = sum_i a_i (p_i - c_i)^2, badly scaled on purpose.
        let (a, c) = ([1.0, 10.0, 100.0], [1.0, -2.0, 0.5]);
        let mut s = ParamStore::new();
        let id = s.add("p", &[3], &[5.0, 5.0, 5.0]).unwrap();
        let mut opt = Adam::new(0.05);
        for _ in 0..3000 {
            let p = s.value(id).to_vec();
            for (i, g) in s.grad_mut(id).iter_mut().enumerate() {
                *g = 2.0 * a[i] * (p[i] - c[i]);
            }
            opt.step(&mut s).unwrap();
        }
        for (p, c) in s.value(id).iter().zip(c) {
            assert!((p - c).abs() < 1e-3, "{p} vs {c}");
        }
        assert_eq!(opt.steps(), 3000);
    }

    #[test]
    fn bias_correction_matches_a_hand_computation() {
        let mut s = ParamStore::new();
        let id = s.add("p", &[2], &[1.0, -1.0]).unwrap();
        let mut opt = Adam::new(0.1);
        opt.weight_decay = 0.5;
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        let g = [[0.3, -2.0], [-0.1, 4.0]];
        let mut p = [1.0, -1.0];
        let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
        for (k, gk) in g.iter().enumerate() {
            s.grad_mut(id).copy_from_slice(gk);
            opt.step(&mut s).unwrap();
            let t = (k + 1) as i32;
            for i in 0..2 {
                let gi = gk[i] + 0.5 * p[i];
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                let mh = m[i] / (1.0 - b1.powi(t));
                let vh = v[i] / (1.0 - b2.powi(t));
                p[i] -= 0.1 * mh / (vh.sqrt() + eps);
            }
            for (a, b) in s.value(id).iter().zip(&p) {
                assert!((a - b).abs() < 1e-15, "step {t}: {a} vs {b}");
            }
        }
        // The first step moves each parameter by lr (times the sign of its gradient).
        let mut s2 = ParamStore::new();
        let id2 = s2.add("q", &[1], &[0.0]).unwrap();
        s2.grad_mut(id2)[0] = 1e-3;
        let mut o2 = Adam::new(0.1);
        o2.step(&mut s2).unwrap();
        assert!((s2.value(id2)[0] + 0.1).abs() < 1e-6);
    }

    /// Adam on the real model: a few steps on one synthetic batch lower the loss.
    #[test]
    fn adam_trains_the_attention_node() {
        use ionode_autodiff::Tape;
        use ionode_model::{synthetic, ForwardOptions, Model, ModelConfig, Solver};
        let cfg = ModelConfig {
            embed_dim: 4,
            hidden: 8,
            solver: Solver::Rk4 { steps: 4 },
            ..ModelConfig::default()
        };
        let mut store = ParamStore::new();
        let model = Model::new(cfg.clone(), &mut store, 1).unwrap();
        let batch = synthetic::batch(&cfg, 8, 2);
        let mut adam = Adam::new(1e-2);
        let mut tape = Tape::new();
        let mut losses = Vec::new();
        for _ in 0..40 {
            tape.clear();
            store.zero_grad();
            let fwd = model
                .forward(&mut tape, &store, &batch, ForwardOptions::default())
                .unwrap();
            let loss = model.loss(&mut tape, &fwd).unwrap();
            tape.backward_into(loss.total, &mut store).unwrap();
            clip_grad_norm(&mut store, 10.0);
            adam.step(&mut store).unwrap();
            losses.push(tape.item(loss.total));
        }
        assert!(
            losses[39] < 0.5 * losses[0],
            "loss {} -> {}",
            losses[0],
            losses[39]
        );
    }

    #[test]
    fn clipping_and_refusals() {
        let mut s = ParamStore::new();
        let id = s.add("p", &[2], &[0.0, 0.0]).unwrap();
        s.grad_mut(id).copy_from_slice(&[3.0, 4.0]);
        assert_eq!(clip_grad_norm(&mut s, 1.0), 5.0);
        assert!((grad_norm(&s) - 1.0).abs() < 1e-15);
        assert_eq!(clip_grad_norm(&mut s, 10.0), grad_norm(&s));
        s.grad_mut(id)[1] = f64::NAN;
        let mut opt = Adam::new(0.1);
        assert!(matches!(
            opt.step(&mut s),
            Err(OptimError::NonFiniteGradient { index: 1, .. })
        ));
        assert_eq!(s.value(id), &[0.0, 0.0]);
        s.grad_mut(id)[1] = 0.0;
        opt.step(&mut s).unwrap();
        s.add("q", &[1], &[0.0]).unwrap();
        assert!(matches!(
            opt.step(&mut s),
            Err(OptimError::StoreChanged { .. })
        ));
    }
}
