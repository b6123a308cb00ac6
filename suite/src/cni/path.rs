//! Where plugins are looked for when nobody says: the suite's one default `CNI_PATH`.

use std::path::{Path, PathBuf};

/// The usual install directories, in search order: the CNI project's and Debian's.
pub const DEFAULT_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];

/// [`DEFAULT_DIRS`] as a `CNI_PATH` value.
pub fn default_cni_path() -> String {
    DEFAULT_DIRS.join(":")
}

/// `first` (a plugin's own directory), then those of [`DEFAULT_DIRS`] that exist on this
/// machine, each once.
pub fn with_default_dirs(first: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = first.map(Path::to_path_buf).into_iter().collect();
    for dir in DEFAULT_DIRS.map(PathBuf::from) {
        if !dirs.contains(&dir) && dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_directory_comes_first_and_once() {
        assert_eq!(default_cni_path(), "/opt/cni/bin:/usr/lib/cni");
        let dirs = with_default_dirs(Some(Path::new("/usr/lib/cni")));
        assert_eq!(dirs[0], Path::new("/usr/lib/cni"));
        assert_eq!(dirs.iter().filter(|d| d.ends_with("lib/cni")).count(), 1);
        assert!(with_default_dirs(None).iter().all(|d| d.is_dir()));
    }
}
