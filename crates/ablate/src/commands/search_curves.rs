//! `ablate search-curves DIR... --out OUT`: finished TPE and random searches compared by
//! the best score found against the number of candidates (`ionode_report::search_curves`).

use crate::cli::SearchCurvesArgs;
use anyhow::Result;
use ionode_report::search_curves;
use ionode_study::manifest::Plan;

/// Most studies one comparison reads.
const MAX_STUDIES: usize = 1000;

pub fn run(args: &SearchCurvesArgs) -> Result<()> {
    if args.dirs.len() > MAX_STUDIES {
        return Err(crate::usage!(
            "{} study folders: expected at most {MAX_STUDIES}",
            args.dirs.len()
        ));
    }
    for d in &args.dirs {
        let plan = Plan::read(d)?;
        if let Some(s) = plan
            .search
            .as_ref()
            .filter(|s| s.spec.objectives().len() > 1)
        {
            return Err(crate::usage!(
                "'{}' searches the Pareto front of {}: its report draws the front; a curve \
                 follows one objective",
                d.display(),
                s.spec.metric_label()
            ));
        }
        if plan.search.as_ref().and_then(|s| s.spec.tpe()).is_none() {
            return Err(crate::usage!(
                "'{}' is study '{}', which is no TPE search (sampler = \"tpe\"); a random search \
                 to compare is a TPE search whose candidates are all its random start",
                d.display(),
                plan.study
            ));
        }
    }
    let curves = args
        .dirs
        .iter()
        .map(|d| search_curves::curve(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut text = search_curves::write(&curves, &args.out)?;
    text.push_str(&format!(
        "wrote {} and {}.{{png,svg,pdf}}\n",
        args.out.join("search_curves.csv").display(),
        args.out.join("search_curves").display()
    ));
    super::print_stdout(&text)
}
