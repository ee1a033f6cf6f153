//! Any bytes as the values of `ablate slurm`'s options (fields separated by NUL: partition,
//! time, mem, account, qos, then `--sbatch-arg`s): refused with the flag named, or written
//! into scripts whose every `#SBATCH` line is one option ionode meant, with nothing a user
//! typed able to add a line or reach the shell unquoted.
#![no_main]

use ionode_study::slurm::{array_script, report_script, Given, Study};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fields: Vec<&str> = text.split('\0').collect();
    let field = |i: usize| fields.get(i).copied().filter(|s| !s.is_empty());
    let extra: Vec<String> = fields.iter().skip(5).map(|s| s.to_string()).collect();
    let given = Given {
        shards: 3,
        cpus: 2,
        throttle: None,
        partition: field(0),
        time: field(1),
        mem: field(2),
        account: field(3),
        qos: field(4),
        extra: &extra,
    };
    let options = match given.check() {
        Ok(o) => o,
        Err(problems) => {
            assert!(problems.iter().all(|p| p.starts_with("--")), "{problems:?}");
            return;
        }
    };
    let study = Study {
        name: "fuzz",
        runs: 9,
        run_args: vec!["run".into(), "m.toml".into()],
        study_dir: "results/fuzz".into(),
        cwd: "/work".into(),
        logs: "/work/results/fuzz/slurm".into(),
        exe: "/usr/bin/ablate".into(),
    };
    let scripts = [
        (array_script(&options, &study), 1),
        (report_script(&options, &study), 0),
    ];
    for (script, arrays) in scripts {
        let directives: Vec<&str> = script
            .lines()
            .filter(|l| l.starts_with("#SBATCH"))
            .collect();
        for d in &options.directives {
            let line = format!("#SBATCH {}", d.as_str());
            assert_eq!(
                directives.iter().filter(|l| **l == line).count(),
                1,
                "{script}"
            );
        }
        for l in &directives {
            let option = &l["#SBATCH ".len()..];
            assert!(
                option.starts_with("--") && !option.contains(char::is_whitespace),
                "{l:?}"
            );
        }
        // No user option is one of ionode's own, in full or abbreviated (sbatch reads a
        // prefix as the whole option).
        const OWN: [&str; 9] = [
            "array",
            "output",
            "error",
            "chdir",
            "job-name",
            "cpus-per-task",
            "open-mode",
            "dependency",
            "wrap",
        ];
        for d in &extra {
            let key = d
                .trim_start_matches("--")
                .split('=')
                .next()
                .unwrap_or_default();
            assert!(!OWN.iter().any(|o| o.starts_with(key)), "{d:?} got through");
        }
        let starting = |p: &str| directives.iter().filter(|l| l.starts_with(p)).count();
        assert_eq!(starting("#SBATCH --array="), arrays, "{script}");
        assert_eq!(starting("#SBATCH --chdir="), 1, "{script}");
        assert_eq!(starting("#SBATCH --output="), 1, "{script}");
    }
});
