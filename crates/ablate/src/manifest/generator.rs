//! A manifest's `[datasets.pretrain]` table: the flags of `ablate simulate`, run once per
//! study into `results/<study>/data/` under a name that is the hash of the table.

use crate::cli::FluxSpacing;
use crate::{membrane, provenance};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The pre-training set: a file, or the generator flags of `ablate simulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    #[serde(default = "d_membrane")]
    pub membrane: String,
    pub samples: usize,
    pub seed: u64,
    #[serde(default = "d_species")]
    pub species: String,
    #[serde(default = "d_min_ions")]
    pub min_ions: usize,
    #[serde(default)]
    pub max_ions: Option<usize>,
    #[serde(default = "d_c_min")]
    pub c_min: f64,
    #[serde(default = "d_c_max")]
    pub c_max: f64,
    #[serde(default = "d_flux_min")]
    pub flux_min: String,
    #[serde(default = "d_flux_max")]
    pub flux_max: String,
    #[serde(default = "d_flux_count")]
    pub flux_count: usize,
    #[serde(default = "d_spacing")]
    pub flux_spacing: FluxSpacing,
    #[serde(default = "d_ideal")]
    pub activity: String,
    #[serde(default = "d_none")]
    pub cp: String,
    #[serde(default = "d_elements")]
    pub elements: usize,
    #[serde(default = "d_temperature")]
    pub temperature: String,
    /// The top of a temperature range (each feed drawn uniformly in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_max: Option<String>,
}

// The defaults of `ablate simulate`'s flags.
fn d_membrane() -> String {
    "nf270".into()
}
fn d_species() -> String {
    "Na+,K+,Li+,Mg2+,Ca2+,Cl-,SO4^2-".into()
}
fn d_min_ions() -> usize {
    2
}
fn d_c_min() -> f64 {
    1.0
}
fn d_c_max() -> f64 {
    200.0
}
fn d_flux_min() -> String {
    "2e-6".into()
}
fn d_flux_max() -> String {
    "3e-5".into()
}
fn d_flux_count() -> usize {
    16
}
fn d_spacing() -> FluxSpacing {
    FluxSpacing::Linear
}
fn d_ideal() -> String {
    "ideal".into()
}
fn d_none() -> String {
    "none".into()
}
fn d_elements() -> usize {
    1
}
fn d_temperature() -> String {
    "25C".into()
}

impl GeneratorSpec {
    /// The flags of `ablate simulate` for this spec; a membrane file is relative to
    /// `base` (the manifest's folder).
    pub fn args(
        &self,
        out: PathBuf,
        threads: Option<usize>,
        base: &Path,
    ) -> crate::cli::SimulateArgs {
        crate::cli::SimulateArgs {
            membrane: if membrane::is_file(&self.membrane) {
                membrane::path_of(&self.membrane, base)
                    .display()
                    .to_string()
            } else {
                self.membrane.clone()
            },
            samples: self.samples,
            seed: self.seed,
            out,
            species: self.species.clone(),
            min_ions: self.min_ions,
            max_ions: self.max_ions,
            c_min: self.c_min,
            c_max: self.c_max,
            flux_min: self.flux_min.clone(),
            flux_max: self.flux_max.clone(),
            flux_count: self.flux_count,
            flux_spacing: self.flux_spacing,
            activity: self.activity.clone(),
            cp: self.cp.clone(),
            elements: self.elements,
            temperature: self.temperature.clone(),
            temperature_max: self.temperature_max.clone(),
            threads,
            ions: None,
        }
    }

    /// The cache name of the generated file: a hash of the spec, and of the membrane's
    /// values when it comes from a file (so an edited membrane file is a new data set).
    pub fn file_name(&self, membrane: &ionode_physics::Membrane) -> String {
        let mut json = serde_json::to_string(self).expect("the spec serialises");
        if membrane::is_file(&self.membrane) {
            json.push_str(&serde_json::to_string(membrane).expect("a membrane serialises"));
        }
        format!("pretrain-{}.h5", provenance::text_hash(&json))
    }
}
