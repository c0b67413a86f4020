use std::fs;
use std::path::{Path, PathBuf};
use whetstone_api::{Access, Api, Error};

/// A home folder, an allowed folder and a folder outside both, all canonical.
struct Setup {
    _dir: tempfile::TempDir,
    api: Api,
    home: PathBuf,
    allowed: PathBuf,
    outside: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let home = root.join("home");
    let allowed = root.join("allowed");
    let outside = root.join("outside");
    fs::create_dir_all(&allowed).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(allowed.join("data.jsonl"), "{}\n").unwrap();
    fs::write(outside.join("secret.txt"), "secret\n").unwrap();
    let api = Api::open(&home).unwrap();
    api.allow_folder(&allowed).unwrap();
    Setup {
        _dir: dir,
        api,
        home,
        allowed,
        outside,
    }
}

fn assert_refused(result: whetstone_api::Result<PathBuf>, path: &Path) {
    match result {
        Err(err @ Error::PathNotAllowed { .. }) => {
            assert_eq!(err.code(), "path_not_allowed");
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "names the path: {message}");
            assert!(message.contains("whet folders add"), "says how to allow it: {message}");
        }
        other => panic!("{} should be refused, got {other:?}", path.display()),
    }
}

#[test]
fn files_inside_an_allowed_folder_are_confined_to_their_canonical_path() {
    let s = setup();
    let file = s.allowed.join("data.jsonl");
    assert_eq!(s.api.confine(&file, Access::Read).unwrap(), file);
    assert_eq!(s.api.confine(&file, Access::Write).unwrap(), file);
    assert_eq!(s.api.confine(&s.allowed, Access::Read).unwrap(), s.allowed);
    // A `..` that stays inside is fine: only where the path leads counts.
    fs::create_dir(s.allowed.join("sub")).unwrap();
    let detour = s.allowed.join("sub").join("..").join("data.jsonl");
    assert_eq!(s.api.confine(&detour, Access::Read).unwrap(), file);
}

#[test]
fn paths_outside_every_allowed_folder_are_refused() {
    let s = setup();
    let secret = s.outside.join("secret.txt");
    assert_refused(s.api.confine(&secret, Access::Read), &secret);
    assert_refused(s.api.confine(&secret, Access::Write), &secret);
    assert_refused(s.api.confine(&s.outside, Access::Read), &s.outside);
    let new_file = s.outside.join("new.jsonl");
    assert_refused(s.api.confine(&new_file, Access::Write), &new_file);
    // A folder whose name merely starts like an allowed one is a different folder.
    let sibling = PathBuf::from(format!("{}-evil", s.allowed.display()));
    fs::create_dir(&sibling).unwrap();
    assert_refused(s.api.confine(&sibling, Access::Read), &sibling);
}

#[test]
fn missing_files_outside_are_refused_not_reported_missing() {
    let s = setup();
    let missing = s.outside.join("no-such-file");
    assert_refused(s.api.confine(&missing, Access::Read), &missing);
    let missing_inside = s.allowed.join("no-such-file");
    let err = s.api.confine(&missing_inside, Access::Read).unwrap_err();
    assert_eq!(err.code(), "io", "{err}");
}

#[test]
fn dot_dot_escapes_are_refused() {
    let s = setup();
    let escape = s.allowed.join("..").join("outside").join("secret.txt");
    assert_refused(s.api.confine(&escape, Access::Read), &escape);
    assert_refused(s.api.confine(&escape, Access::Write), &escape);
    // Through a folder that does not exist, where the OS cannot resolve the `..` for us.
    let through_new = s.allowed.join("new").join("..").join("..").join("outside").join("x");
    assert_refused(s.api.confine(&through_new, Access::Write), &through_new);
    let relative = Path::new("allowed/../outside/secret.txt");
    assert_refused(s.api.confine(relative, Access::Read), relative);
}

#[cfg(unix)]
#[test]
fn links_inside_that_point_outside_are_refused() {
    use std::os::unix::fs::symlink;
    let s = setup();
    let file_link = s.allowed.join("looks-local.txt");
    symlink(s.outside.join("secret.txt"), &file_link).unwrap();
    assert_refused(s.api.confine(&file_link, Access::Read), &file_link);
    assert_refused(s.api.confine(&file_link, Access::Write), &file_link);

    let dir_link = s.allowed.join("looks-like-a-subfolder");
    symlink(&s.outside, &dir_link).unwrap();
    let through = dir_link.join("secret.txt");
    assert_refused(s.api.confine(&through, Access::Read), &through);
    let new_through = dir_link.join("new-output.jsonl");
    assert_refused(s.api.confine(&new_through, Access::Write), &new_through);

    // A dangling link would make a write create its target, wherever that is.
    let dangling = s.allowed.join("dangling");
    symlink(s.outside.join("not-yet.txt"), &dangling).unwrap();
    assert_refused(s.api.confine(&dangling, Access::Write), &dangling);
    assert!(!s.outside.join("not-yet.txt").exists());

    // A link that stays inside is fine and resolves to its target.
    let inner = s.allowed.join("alias.jsonl");
    symlink(s.allowed.join("data.jsonl"), &inner).unwrap();
    assert_eq!(s.api.confine(&inner, Access::Read).unwrap(), s.allowed.join("data.jsonl"));
}

#[test]
fn write_targets_that_do_not_exist_yet_are_allowed_inside() {
    let s = setup();
    let target = s.allowed.join("exports").join("2026").join("train.jsonl");
    assert_eq!(s.api.confine(&target, Access::Write).unwrap(), target);
    assert!(!s.allowed.join("exports").exists(), "confine must not create anything");
    let err = s.api.confine(&target, Access::Read).unwrap_err();
    assert_eq!(err.code(), "io", "reading a missing file inside is an I/O error: {err}");
}

#[test]
fn the_home_folder_is_always_allowed() {
    let s = setup();
    assert!(s.api.allowed_folders().unwrap().iter().all(|f| Path::new(&f.path) != s.home));
    let db = s.home.join(whetstone_api::DATABASE_FILE);
    assert_eq!(s.api.confine(&db, Access::Read).unwrap(), db);
    let run = s.home.join("runs").join("7");
    assert_eq!(s.api.confine(&run, Access::Write).unwrap(), run);
    let err = s.api.forget_folder(&s.home).unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert_eq!(s.api.confine(&db, Access::Read).unwrap(), db);
}

#[test]
fn allowing_and_forgetting_folders() {
    let s = setup();
    let listed: Vec<String> = s.api.allowed_folders().unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(listed, [s.allowed.display().to_string()]);

    // Stored canonical, so a roundabout spelling is the same folder.
    let roundabout = s.outside.join("..").join("allowed");
    let again = s.api.allow_folder(&roundabout).unwrap();
    assert_eq!(Path::new(&again.path), s.allowed);
    assert_eq!(s.api.allowed_folders().unwrap().len(), 1);

    let file = s.allowed.join("data.jsonl");
    assert_eq!(s.api.allow_folder(&file).unwrap_err().code(), "invalid_input");
    let missing = s.outside.join("missing");
    assert_eq!(s.api.allow_folder(&missing).unwrap_err().code(), "invalid_input");

    let secret = s.outside.join("secret.txt");
    assert_refused(s.api.confine(&secret, Access::Read), &secret);
    s.api.allow_folder(&s.outside).unwrap();
    assert_eq!(s.api.confine(&secret, Access::Read).unwrap(), secret);

    s.api.forget_folder(&roundabout).unwrap();
    let data = s.allowed.join("data.jsonl");
    assert_refused(s.api.confine(&data, Access::Read), &data);
    assert_eq!(s.api.forget_folder(&s.allowed).unwrap_err().code(), "not_found");

    // A folder deleted after it was allowed can still be forgotten by its old name.
    fs::remove_dir_all(&s.outside).unwrap();
    s.api.forget_folder(&s.outside).unwrap();
    assert!(s.api.allowed_folders().unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn an_allowed_folder_replaced_by_a_link_no_longer_counts() {
    let s = setup();
    fs::remove_dir_all(&s.allowed).unwrap();
    std::os::unix::fs::symlink(&s.outside, &s.allowed).unwrap();
    let through = s.allowed.join("secret.txt");
    assert_refused(s.api.confine(&through, Access::Read), &through);
}
