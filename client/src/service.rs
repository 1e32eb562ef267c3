//! Platform plumbing for `ltxctl daemon …` and `open`, as plain functions (type-checked for macOS here).
use ltx_protocol::paths::{self, Env, Os, ServiceAction};
use std::path::{Path, PathBuf};

/// The service-manager commands to run when the per-user service is installed, else `None`.
pub fn managed_commands(os: Os, env: &Env, action: ServiceAction, uid: u32) -> Option<Vec<Vec<String>>> {
    let unit = paths::service_unit(os, env);
    if !unit.is_file() {
        return None;
    }
    let mut cmds = vec![paths::service_command(os, action, uid, &unit)];
    if action == ServiceAction::Start {
        cmds.extend(paths::service_kick(os, uid));
    }
    Some(cmds)
}

/// The command that opens a file with the user's default application.
pub fn open_command(os: Os, file: &Path) -> Vec<String> {
    let prog = if os == Os::Mac { "open" } else { "xdg-open" };
    vec![prog.into(), file.display().to_string()]
}

/// The `ltxd` to spawn: `$LTXD_BIN`, else next to this executable, else `ltxd` on `PATH`.
pub fn daemon_binary(env: &Env, current_exe: Option<&Path>) -> PathBuf {
    if let Some(p) = (env.0)("LTXD_BIN") {
        return p.into();
    }
    current_exe
        .and_then(Path::parent)
        .map(|d| d.join("ltxd"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("ltxd"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn service_detection() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_path_buf();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let env = Env(&f);
        assert!(managed_commands(Os::Linux, &env, ServiceAction::Start, 1000).is_none());
        let unit = home.path().join(".config/systemd/user/ltxd.service");
        std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
        std::fs::write(&unit, "[Service]\n").unwrap();
        let cmds = managed_commands(Os::Linux, &env, ServiceAction::Start, 1000).unwrap();
        assert_eq!(cmds, [["systemctl", "--user", "start", "ltxd.service"]]);
        let plist = home.path().join("Library/LaunchAgents/com.ltx.ltxd.plist");
        std::fs::create_dir_all(plist.parent().unwrap()).unwrap();
        std::fs::write(&plist, "").unwrap();
        let cmds = managed_commands(Os::Mac, &env, ServiceAction::Start, 501).unwrap();
        assert_eq!(cmds[0][..3], ["launchctl", "bootstrap", "gui/501"]);
        assert_eq!(cmds[1], ["launchctl", "kickstart", "gui/501/com.ltx.ltxd"]);
        assert_eq!(open_command(Os::Mac, Path::new("/a.mp4")), ["open", "/a.mp4"]);
        assert_eq!(daemon_binary(&env, None), PathBuf::from("ltxd"));
    }
}
