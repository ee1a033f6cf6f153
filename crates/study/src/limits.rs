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

/// Largest manifest, run config, design, ion or case file that is read. They are written
/// by hand; the bound (and refusing what is not a regular file) keeps a mistaken path such
/// as `/dev/zero` from filling memory or blocking forever.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;
/// Largest `plan.json` that is read: written by ionode, with every run's resolved config
/// (about 4 kB each; a plan of [`MAX_RUNS`] measured 380 MB), so it is bounded by the plan's
/// own bound with room, not by the hand-written files' one.
pub const MAX_PLAN_BYTES: u64 = MAX_RUNS * (16 << 10);
/// Largest data file (measured CSV or Parquet) that is read.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 30;
/// Largest HDF5 file that is read (a simulated pre-training set, a run record).
pub const MAX_HDF5_FILE_BYTES: u64 = 64 << 30;

/// The refusal of a file that is not a regular one of at most `max` bytes.
fn check_meta(meta: &std::fs::Metadata, max: u64) -> std::io::Result<()> {
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "a FIFO, socket or device"
        };
        return Err(std::io::Error::other(format!(
            "not a regular file ({what})"
        )));
    }
    if meta.len() > max {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the most that is read, {max}",
            meta.len()
        )));
    }
    Ok(())
}

/// Opens a file the user named for reading: a regular file of at most `max` bytes, noted
/// as an input of this process. It is opened without blocking, so a FIFO or a device is
/// refused instead of waiting for a writer forever.
pub fn open_input(path: &std::path::Path, max: u64) -> std::io::Result<std::fs::File> {
    let file = open_regular(path, max)?;
    crate::inputs::note(&file.metadata()?);
    Ok(file)
}

/// Opens a regular file of at most `max` bytes for reading, without blocking on a FIFO or
/// a device (refused instead), and without noting it as an input.
pub fn open_regular(path: &std::path::Path, max: u64) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    check_meta(&file.metadata()?, max)?;
    Ok(file)
}

/// Checks, before a library opens it by name (HDF5), that `path` is a regular file of at
/// most `max` bytes, and notes it as an input of this process.
pub fn check_input(path: &std::path::Path, max: u64) -> std::io::Result<()> {
    open_input(path, max).map(drop)
}

/// Reads a file the user named: a regular file of at most `max` bytes ([`open_input`]).
pub fn read_file(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_input(path, max)?;
    let len = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` also bounds a file that grows while it is read.
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_file`] as UTF-8 text.
pub fn read_text(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_file(path, max)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Reads a file ionode keeps and rewrites beside a run (a cache, tags): bounded and regular
/// like an input, but not noted as one, since the same command writes it back.
pub fn read_own_text(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = open_regular(path, max)?;
    // Sized once: a query reads 100 000 of these.
    let mut text = String::with_capacity(file.metadata()?.len() as usize + 1);
    file.take(max).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(&f, "x = 1\n").unwrap();
        assert_eq!(read_text(&f, 100).unwrap(), "x = 1\n");
        let e = read_text(&f, 3).unwrap_err().to_string();
        assert!(
            e.contains("6 bytes, more than the most that is read, 3"),
            "{e}"
        );
        let e = read_text(dir.path(), 100).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_text(std::path::Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read_text(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        assert!(crate::inputs::is_input(&std::fs::metadata(&f).unwrap()));
        assert!(!crate::inputs::is_input(
            &std::fs::metadata(dir.path()).unwrap()
        ));
    }
}
