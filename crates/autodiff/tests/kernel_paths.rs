//! Every kernel path this CPU can run (portable, AVX2+FMA, AVX-512) gives the same bits,
//! for every op's value and gradient (see `src/isa.rs` for why they can).
//!
//! Forcing a path is process-wide, so this file holds one test: it is its own process.

mod common;
use common::every_op::{grads, inputs, Dims};
use ionode_autodiff::{fastmath, force_kernel_path, KernelPath, Tape};

/// Large enough that the linear layers and the attention products go through the packed
/// GEMM (m n k far above the unpacked paths' limit, depth above 16), with partial tiles.
const DIMS: Dims = (12, 21, 47);

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_kernel_path_gives_the_portable_bits() {
    let v = inputs(7, DIMS);
    let xs: Vec<f64> = (0..4099).map(|i| (i as f64 - 2049.0) * 0.0173).collect();
    let mut want = None;
    let available = KernelPath::available();
    for path in available.iter().copied() {
        force_kernel_path(Some(path)).unwrap();
        assert_eq!(ionode_autodiff::kernel_path(), path);
        let (loss, g) = grads(&mut Tape::new(), DIMS, &v);
        let mut e = vec![0.0; xs.len()];
        let mut t = vec![0.0; xs.len()];
        fastmath::exp_slice(&mut e, &xs);
        fastmath::tanh_slice(&mut t, &xs);
        let got = (
            loss.to_bits(),
            g.iter().map(|g| bits(g)).collect::<Vec<_>>(),
            bits(&e),
            bits(&t),
        );
        assert!(g.iter().flatten().all(|x| x.is_finite()), "{path}");
        match &want {
            None => want = Some(got),
            Some(w) => assert!(
                *w == got,
                "kernel path {path} differs from {}",
                available[0]
            ),
        }
    }
    force_kernel_path(None).unwrap();
    // A path this CPU lacks is refused by name, not run.
    for p in KernelPath::ALL {
        if !available.contains(&p) {
            let e = force_kernel_path(Some(p)).unwrap_err().to_string();
            assert!(e.contains(p.name()) && e.contains("not supported"), "{e}");
        }
    }
}
