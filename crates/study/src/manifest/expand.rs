//! A manifest's axes: `[grid]` (every combination, first axis slowest) and `[random]`
//! (points drawn from the manifest seed), and their product.

use ionode_random::{stream_seed, Rng};
use serde::{Deserialize, Serialize};
use toml::Value;

use super::locate::KeyPath;

/// Salt of the random-search stream (distinct from every training stream).
const RANDOM_SALT: u64 = 0x7261_6e64_6f6d_2121;

/// A random-search distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    Uniform { min: f64, max: f64 },
    LogUniform { min: f64, max: f64 },
    IntUniform { min: i64, max: i64 },
    Choice { values: Vec<Value> },
}

impl Dist {
    /// Why the distribution cannot be drawn from, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        let ordered = |min: f64, max: f64| min.is_finite() && max.is_finite() && min < max;
        match self {
            Dist::Uniform { min, max } if !ordered(*min, *max) => {
                Some("out of range (need finite min < max)")
            }
            Dist::LogUniform { min, max } if !(*min > 0.0 && ordered(*min, *max)) => {
                Some("out of range (need 0 < min < max, finite)")
            }
            Dist::IntUniform { min, max } if min > max => Some("out of range (need min <= max)"),
            Dist::Choice { values } if values.is_empty() => Some("an empty choice"),
            _ => None,
        }
    }

    /// Whether the distribution can give `v` (a named candidate's value).
    pub fn contains(&self, v: &Value) -> bool {
        let real = || v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
        match self {
            Dist::Uniform { min, max } | Dist::LogUniform { min, max } => {
                real().is_some_and(|x| (*min..=*max).contains(&x))
            }
            Dist::IntUniform { min, max } => {
                v.as_integer().is_some_and(|x| (*min..=*max).contains(&x))
            }
            Dist::Choice { values } => values.contains(v),
        }
    }

    /// The distribution as people read it.
    pub fn describe(&self) -> String {
        match self {
            Dist::Uniform { min, max } => format!("uniform over [{min}, {max}]"),
            Dist::LogUniform { min, max } => format!("log_uniform over [{min}, {max}]"),
            Dist::IntUniform { min, max } => format!("the integers {min}..={max}"),
            Dist::Choice { values } => format!(
                "the choice of {}",
                values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn draw(&self, rng: &mut Rng) -> Value {
        match self {
            Dist::Uniform { min, max } => Value::Float(min + (max - min) * rng.uniform()),
            Dist::LogUniform { min, max } => Value::Float(rng.log_uniform(*min, *max)),
            Dist::IntUniform { min, max } => {
                // The span as u64: min..=max may cover more than i64's positive half.
                let span = max.abs_diff(*min);
                let k = match span.checked_add(1) {
                    Some(n) => rng.next_u64() % n,
                    None => rng.next_u64(),
                };
                Value::Integer(min.wrapping_add(k as i64))
            }
            Dist::Choice { values } => values[rng.int_inclusive(0, values.len() - 1)].clone(),
        }
    }
}

/// One value of an axis at one point: (axis path, value, manifest path of the value).
pub type AxisValue = (String, Value, KeyPath);

/// `samples` points of the random axes, each drawn from its own stream of the manifest
/// seed (so a point does not depend on how many others there are).
pub fn random_points(axes: &[(String, Dist)], samples: u64, seed: u64) -> Vec<Vec<AxisValue>> {
    (0..samples)
        .map(|k| {
            let mut rng = Rng::new(stream_seed(seed ^ RANDOM_SALT, k));
            axes.iter()
                .map(|(axis, d)| {
                    let at = vec!["random".to_string(), axis.clone()];
                    (axis.clone(), d.draw(&mut rng), at)
                })
                .collect()
        })
        .collect()
}

/// A grid axis: its path, its values and the manifest path of each value.
pub type GridAxis = (String, Vec<Value>, Vec<KeyPath>);

/// Every grid point (first axis slowest) x every random point.
pub fn points(grid: &[GridAxis], random: &[Vec<AxisValue>]) -> Vec<Vec<AxisValue>> {
    let mut points: Vec<Vec<AxisValue>> = vec![vec![]];
    for (axis, values, paths) in grid {
        let mut next = Vec::with_capacity(points.len() * values.len());
        for p in &points {
            for (v, at) in values.iter().zip(paths) {
                let mut q = p.clone();
                q.push((axis.clone(), v.clone(), at.clone()));
                next.push(q);
            }
        }
        points = next;
    }
    points
        .iter()
        .flat_map(|g| {
            random.iter().map(move |r| {
                let mut q = g.clone();
                q.extend(r.iter().cloned());
                q
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_are_checked_and_drawn_in_range() {
        assert!(Dist::Uniform { min: 1.0, max: 1.0 }.problem().is_some());
        assert!(Dist::LogUniform { min: 0.0, max: 1.0 }.problem().is_some());
        assert!(Dist::Uniform {
            min: 0.0,
            max: f64::INFINITY
        }
        .problem()
        .is_some());
        let wide = Dist::IntUniform {
            min: i64::MIN,
            max: i64::MAX,
        };
        assert!(wide.problem().is_none());
        let pts = random_points(&[("a".into(), wide)], 50, 3);
        assert_eq!(pts.len(), 50);
        let ints = Dist::IntUniform { min: -2, max: 2 };
        for p in random_points(&[("a".into(), ints)], 200, 1) {
            let Value::Integer(v) = p[0].1 else { panic!() };
            assert!((-2..=2).contains(&v));
        }
    }

    #[test]
    fn grid_points_vary_the_last_axis_fastest() {
        let axis = |name: &str, n: i64| -> GridAxis {
            (
                name.into(),
                (0..n).map(Value::Integer).collect(),
                (0..n).map(|i| vec![format!("[{i}]")]).collect(),
            )
        };
        let p = points(&[axis("a", 2), axis("b", 3)], &[vec![]]);
        let values: Vec<(i64, i64)> = p
            .iter()
            .map(|q| (q[0].1.as_integer().unwrap(), q[1].1.as_integer().unwrap()))
            .collect();
        assert_eq!(values, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    }
}
