//! Alone in its own test binary because it changes the process environment.

use std::path::PathBuf;
use whetstone_api::{Api, DATABASE_FILE};

#[test]
fn open_default_uses_whetstone_home() {
    let dir = tempfile::tempdir().unwrap();
    let home: PathBuf = dir.path().join("from-env");
    std::env::set_var("WHETSTONE_HOME", &home);
    let api = Api::open_default().unwrap();
    std::env::remove_var("WHETSTONE_HOME");
    assert_eq!(api.home(), home);
    assert!(home.join(DATABASE_FILE).is_file());
}
