use super::*;
use std::os::unix::fs::symlink;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A directory with `victim` (another user's file, as far as the test is concerned) in it.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    (t, victim)
}

#[test]
fn create_new_and_write_new_refuse_a_planted_link() {
    let (t, victim) = setup();
    let at = t.path().join("out.part");
    symlink(&victim, &at).unwrap();
    assert_eq!(create_new(&at, 0o600).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(write_new(&at, b"x", 0o600).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // A dangling link counts too (O_CREAT|O_EXCL never follows).
    let dangling = t.path().join("d.part");
    symlink(t.path().join("nowhere"), &dangling).unwrap();
    assert!(write_new(&dangling, b"x", 0o600).is_err());
    assert!(!t.path().join("nowhere").exists());
    let fresh = t.path().join("fresh");
    write_new(&fresh, b"new", 0o600).unwrap();
    assert_eq!((std::fs::read(&fresh).unwrap(), mode(&fresh)), (b"new".to_vec(), 0o600));
}

#[test]
fn temporaries_are_private_unpredictable_and_removed_unless_placed() {
    let (t, _) = setup();
    let dir = Dir::open(t.path()).unwrap();
    let (a, b) = (dir.temp(".x.").unwrap(), dir.temp(".x.").unwrap());
    assert_ne!(a.name(), b.name());
    assert!(is_temp_name(a.name(), ".x.") && !is_temp_name(OsStr::new(".x.part"), ".x."));
    assert_eq!(mode(&a.path()), 0o600);
    let (pa, pb) = (a.path(), b.path());
    drop(a);
    assert!(!pa.exists() && pb.exists());
    drop(b);
    assert!(!pb.exists());
    assert!(component(OsStr::new("../x")).is_err() && component(OsStr::new("..")).is_err());
}

#[test]
fn place_new_never_replaces_nor_follows_and_replace_replaces_the_link_itself() {
    let (t, victim) = setup();
    let dir = Dir::open(t.path()).unwrap();
    symlink(&victim, t.path().join("final")).unwrap();
    let mut tmp = dir.temp(".final.").unwrap();
    tmp.write_all(b"output").unwrap();
    let tmp_path = tmp.path();
    assert_eq!(tmp.place_new(OsStr::new("final"), 0o644).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert!(!tmp_path.exists(), "a temporary that could not be placed is removed");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    let mut tmp = dir.temp(".other.").unwrap();
    tmp.write_all(b"output").unwrap();
    tmp.place_new(OsStr::new("other"), 0o644).unwrap();
    assert_eq!(
        (std::fs::read(t.path().join("other")).unwrap(), mode(&t.path().join("other"))),
        (b"output".to_vec(), 0o644)
    );
    assert_eq!(dir.entries().unwrap().iter().filter(|n| n.to_string_lossy().ends_with(".part")).count(), 0);

    let mut tmp = dir.temp(".final.").unwrap();
    tmp.write_all(b"replaced").unwrap();
    tmp.replace(OsStr::new("final"), 0o640).unwrap();
    let fin = t.path().join("final");
    assert!(!std::fs::symlink_metadata(&fin).unwrap().file_type().is_symlink());
    assert_eq!((std::fs::read(&fin).unwrap(), mode(&fin)), (b"replaced".to_vec(), 0o640));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    write_replace(&fin, b"again", 0o644).unwrap();
    assert_eq!(std::fs::read(&fin).unwrap(), b"again");
}

#[test]
fn rename_noreplace_and_link_leave_an_existing_name_alone() {
    let (t, victim) = setup();
    let dir = Dir::open(t.path()).unwrap();
    std::fs::write(t.path().join("a"), b"a").unwrap();
    let e = dir.rename_noreplace(OsStr::new("a"), OsStr::new("victim")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(dir.link(OsStr::new("a"), OsStr::new("victim")).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    dir.rename_noreplace(OsStr::new("a"), OsStr::new("b")).unwrap();
    assert!(!t.path().join("a").exists() && t.path().join("b").is_file());
    let st = dir.stat(OsStr::new("b")).unwrap().unwrap();
    assert!(st.is_file() && st.nlink == 1 && st.uid == euid());
    assert_eq!(dir.stat(OsStr::new("none")).unwrap(), None);
}

#[test]
fn open_own_and_open_resumable_refuse_links() {
    let (t, victim) = setup();
    let dir = Dir::open(t.path()).unwrap();
    symlink(&victim, t.path().join("f.part")).unwrap();
    assert!(dir.open_resumable(OsStr::new("f.part")).is_err());
    assert!(dir.open_own(OsStr::new("f.part")).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let f = dir.open_resumable(OsStr::new("g.part")).unwrap();
    assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn rewrite_goes_through_a_link_and_keeps_mode() {
    let (t, _) = setup();
    let real = t.path().join("dotfiles/config.toml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "a = 1\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = t.path().join("config.toml");
    symlink("dotfiles/config.toml", &link).unwrap();
    rewrite(&link, b"a = 2\n").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
    assert_eq!((std::fs::read_to_string(&real).unwrap(), mode(&real)), ("a = 2\n".into(), 0o640));
    // A new file is private.
    let new = t.path().join("new.toml");
    rewrite(&new, b"x").unwrap();
    assert_eq!(mode(&new), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(real.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn read_trusted_refuses_files_others_can_write() {
    let (t, _) = setup();
    let p = t.path().join("config.toml");
    assert!(read_trusted(&p).unwrap().is_none());
    std::fs::write(&p, "a = 1\n").unwrap();
    // Group-writable is fine while the group is this user's own (a new file's group is the creator's).
    for m in [0o600, 0o644, 0o400, 0o664, 0o620] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        assert_eq!(read_trusted(&p).unwrap().as_deref(), Some("a = 1\n"), "{m:o}");
    }
    for m in [0o602, 0o646, 0o666] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        let e = read_trusted(&p).unwrap_err();
        assert!(matches!(e, TrustError::OthersCanWrite { mode, .. } if mode == m), "{e:?}");
        assert!(e.to_string().contains(&format!("chmod go-w {}", p.display())), "{e}");
    }
}

#[test]
fn orphans_of_a_prefix_are_removed_and_nothing_else() {
    let (t, victim) = setup();
    let dir = Dir::open(t.path()).unwrap();
    let orphan = dir.temp(".config.toml.").unwrap();
    let name = orphan.name().to_os_string();
    std::mem::forget(orphan); // a crash: never dropped
    std::fs::write(t.path().join(".config.toml.part"), b"").unwrap();
    std::fs::write(t.path().join(".other.0123456789abcdef.part"), b"").unwrap();
    symlink(&victim, t.path().join(".config.toml.0123456789abcdef.part")).unwrap();
    let mut removed = dir.remove_orphans(".config.toml.");
    removed.sort();
    assert_eq!(removed, [name]);
    assert!(t.path().join(".config.toml.part").exists() && t.path().join(".other.0123456789abcdef.part").exists());
    assert!(t.path().join(".config.toml.0123456789abcdef.part").symlink_metadata().is_ok(), "links are not ours");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}
