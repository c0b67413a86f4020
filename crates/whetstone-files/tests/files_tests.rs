use std::io::Write;
use whetstone_files::{is_empty_dir, is_temp_name, replace_dir, temp_dir_beside, temp_path, write_atomic, write_atomic_with, write_new, write_synced};

#[test]
fn writes_create_the_folder_and_replace_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a/b/file.json");
    write_atomic(&p, b"first version, long").unwrap();
    write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    let names: Vec<String> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["file.json".to_string()], "no temporary file is left behind");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rows.jsonl");
    write_atomic(&p, b"kept").unwrap();
    let err = write_atomic_with(&p, |w| {
        w.write_all(b"half of it")?;
        Err::<(), _>(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(std::fs::read(&p).unwrap(), b"kept");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn temporary_names_are_hidden_unique_and_recognised() {
    let p = std::path::Path::new("/x/y/metrics.jsonl");
    let (a, b) = (temp_path(p), temp_path(p));
    assert_ne!(a, b);
    assert_eq!(a.parent(), p.parent());
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(is_temp_name(name), "{name}");
    assert!(!is_temp_name("metrics.jsonl"));
}

#[test]
fn empty_folder_check() {
    let dir = tempfile::tempdir().unwrap();
    assert!(is_empty_dir(&dir.path().join("missing")).unwrap());
    assert!(is_empty_dir(dir.path()).unwrap());
    std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
    assert!(!is_empty_dir(dir.path()).unwrap());
}

#[test]
fn a_folder_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("adapter");
    for version in ["one", "two"] {
        let tmp = temp_dir_beside(&target).unwrap();
        assert!(is_temp_name(tmp.file_name().unwrap().to_str().unwrap()));
        write_synced(&tmp.join("weights"), version.as_bytes()).unwrap();
        replace_dir(&tmp, &target).unwrap();
        assert_eq!(std::fs::read(target.join("weights")).unwrap(), version.as_bytes());
    }
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["adapter".to_string()], "neither the temporary nor the old folder is left");
}

#[test]
fn a_new_file_is_written_whole_and_never_replaces_one_that_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imports/data.jsonl");
    write_new(&p, b"first").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"first");
    let err = write_new(&p, b"second").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&p).unwrap(), b"first", "the first file is kept");
    let names: Vec<String> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["data.jsonl".to_string()], "no temporary file is left behind");
    // A dangling link counts as something there too.
    #[cfg(unix)]
    {
        let link = dir.path().join("imports/link.jsonl");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert_eq!(write_new(&link, b"x").unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert!(!dir.path().join("nowhere").exists());
    }
}
