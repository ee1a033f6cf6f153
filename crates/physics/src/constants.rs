//! Physical constants and property correlations, exactly as WaterTAP 1.8.0 / IDAES use them,
//! so that the WaterTAP-parity mode reproduces the reference values to 1e-5.

/// Faraday constant, C/mol (IDAES value).
pub const FARADAY: f64 = 96485.33212;
/// Molar gas constant, J/(mol K).
pub const GAS_CONSTANT: f64 = 8.314462618;
/// Elementary charge, C.
pub const ELEMENTARY_CHARGE: f64 = 1.602176634e-19;
/// Vacuum permittivity, F/m.
pub const VACUUM_PERMITTIVITY: f64 = 8.8541878128e-12;
/// Boltzmann constant, J/K.
pub const BOLTZMANN: f64 = 1.380649e-23;
/// Avogadro constant, 1/mol.
pub const AVOGADRO: f64 = 6.02214076e23;
/// Relative permittivity of bulk water used by the MCAS property package in watertap 1.8.0
/// (it was 80.4 before; the change moves Born exclusion energies by about 2.7 %).
pub const BULK_DIELECTRIC: f64 = 78.36;
/// Solution viscosity, Pa s (an MCAS constant; temperature independent there).
pub const VISCOSITY: f64 = 1.0e-3;
/// Solution density, kg/m3: MCAS `DensityCalculation.constant`. Concentrations are per m3
/// of solution on this basis.
pub const SOLUTION_DENSITY: f64 = 1000.0;
/// Molar mass of water, kg/mol.
pub const WATER_MOLAR_MASS: f64 = 0.018015;

/// `F / (R T)`, 1/V: converts potentials to the dimensionless `phi = F psi / (R T)`.
pub fn f_over_rt(temperature_k: f64) -> f64 {
    FARADAY / (GAS_CONSTANT * temperature_k)
}

/// Pure-water density, kg/m3, from Sharqawy et al. (2010) as used by WaterTAP for the
/// volumetric water flux (996.89 kg/m3 at 298.15 K). Solution densities stay 1000.
pub fn water_density(temperature_k: f64) -> f64 {
    let t = temperature_k - 273.15;
    999.9 + 2.034e-2 * t - 6.162e-3 * t * t + 2.261e-5 * t.powi(3) - 4.657e-8 * t.powi(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_density_matches_reference_at_25c() {
        // the WaterTAP reference file (tests/data): rho_water_Sharqawy_kg_m3_at_298.15K
        let rho = water_density(298.15);
        assert!((rho - 996.8923398437499).abs() < 1e-9, "{rho}");
    }
}
