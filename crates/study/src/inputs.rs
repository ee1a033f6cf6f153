//! The files this process read as inputs. An output must never replace one, whatever path
//! names it (`predict --out` equal to `--data`, a hard link to it, `./x` for `x`): the
//! readers of user-named files (`limits`) note each file here as they open it, and every
//! output checks here before it replaces a file (`output`).

/// A file's identity whatever path names it: device, inode, and the inode's change time
/// (so an inode number the file system reused for a new file is another file).
type FileId = (u64, u64, i64, i64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
}

/// The files this process read as inputs: an output must never replace one
/// (outputs check this before they replace a file), whatever path names it. A set: a
/// report reads every run record of a study, 100 000 of them in a large one.
static INPUTS: std::sync::Mutex<Option<std::collections::HashSet<FileId>>> =
    std::sync::Mutex::new(None);

/// Notes a file (opened for reading) as an input of this process.
pub fn note(meta: &std::fs::Metadata) {
    if let Ok(mut inputs) = INPUTS.lock() {
        inputs
            .get_or_insert_with(Default::default)
            .insert(file_id(meta));
    }
}

/// Whether a file is one this process read as an input.
pub fn is_input(meta: &std::fs::Metadata) -> bool {
    INPUTS
        .lock()
        .is_ok_and(|inputs| inputs.as_ref().is_some_and(|s| s.contains(&file_id(meta))))
}
