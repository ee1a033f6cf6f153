//! Diagnostic: worst relative error of the 0D module against WaterTAP's full-precision values.
use ionode_physics::cases::{ModuleCaseInputs, ModuleCaseOutput, PointCaseOutput};
fn walk(path: &str, e: &serde_json::Value, a: &serde_json::Value, worst: &mut (f64, String)) {
    match e {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "xi_V_m" {
                    continue;
                }
                if let Some(x) = a.get(k) {
                    walk(&format!("{path}.{k}"), v, x, worst)
                }
            }
        }
        serde_json::Value::Number(n) => {
            let (e, a) = (n.as_f64().unwrap(), a.as_f64().unwrap());
            let rel = ((a - e) / e).abs();
            if rel > worst.0 {
                *worst = (rel, path.to_string());
            }
        }
        _ => {}
    }
}
fn main() {
    let text = std::fs::read_to_string("../shared/reference/dspmde_watertap_cases.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in v["groups"]["watertap_unit_tests"].as_array().unwrap() {
        let inputs: ModuleCaseInputs = serde_json::from_value(case["inputs"].clone()).unwrap();
        let sol = inputs.to_spec().unwrap().solve().unwrap();
        let out = serde_json::json!({
            "module": ModuleCaseOutput::from(&sol),
            "point_x0": PointCaseOutput::from(&sol.inlet),
        });
        let mut worst = (0.0, String::new());
        walk("", &case["oracle_full_precision"], &out, &mut worst);
        println!(
            "{:45} worst rel {:.2e} at {}",
            case["id"].as_str().unwrap(),
            worst.0,
            worst.1
        );
    }
}
