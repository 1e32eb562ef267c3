//! systemd --user units (`ltxd.socket` + `ltxd.service`, systemd.socket(5) / systemd.service(5)) and the tray's
//! XDG autostart entry. The socket unit owns the daemon's socket; the daemon adopts it through `LISTEN_FDS`.
use crate::layout::Layout;
use std::path::Path;

/// systemd unit-file quoting for a path used as a single word (`ExecStart=`): `\` and `"` escaped, `%` doubled
/// (specifiers), the whole word in double quotes.
pub fn quote(path: &Path) -> String {
    let s = path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
    format!("\"{s}\"")
}

/// `ListenStream=` takes the rest of the line as the path: only `%` needs escaping.
fn listen_path(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

pub fn socket_unit(l: &Layout) -> String {
    format!(
        "[Unit]\n\
         Description=ltx video generation daemon socket\n\
         Documentation=https://github.com/ltx-rs/ltx\n\
         \n\
         [Socket]\n\
         ListenStream={}\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         RemoveOnStop=yes\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n",
        listen_path(&l.socket)
    )
}

pub fn service_unit(l: &Layout) -> String {
    format!(
        "[Unit]\n\
         Description=ltx video generation daemon\n\
         Documentation=https://github.com/ltx-rs/ltx\n\
         Requires=ltxd.socket\n\
         After=ltxd.socket\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        quote(&l.daemon())
    )
}

/// `~/.config/autostart/ltx-tray.desktop` (XDG Autostart): the tray's login item.
pub fn tray_autostart(l: &Layout) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=LTX\n\
         Comment=LTX video generation in the menu bar\n\
         Exec={}\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        desktop_exec(&l.tray())
    )
}

/// Desktop Entry `Exec` quoting: the path in double quotes with `"`, `` ` ``, `$` and `\` escaped.
fn desktop_exec(path: &Path) -> String {
    let mut s = String::from("\"");
    for c in path.display().to_string().chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            s.push('\\');
        }
        if c == '%' {
            s.push('%');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltx_protocol::paths::{Env, Os};
    use std::ffi::OsString;

    #[test]
    fn units_and_quoting() {
        let f = |k: &str| (k == "HOME").then(|| OsString::from("/home/a b%c"));
        let l = Layout::new(Os::Linux, &Env(&f), 1000, "/run/user/1000/ltx/ltxd.sock".into());
        let s = socket_unit(&l);
        assert!(s.contains("\nListenStream=/run/user/1000/ltx/ltxd.sock\nSocketMode=0600\n"), "{s}");
        let svc = service_unit(&l);
        assert!(svc.contains("\nExecStart=\"/home/a b%%c/.local/share/ltx/bin/ltxd\"\n"), "{svc}");
        assert!(svc.contains("Requires=ltxd.socket\nAfter=ltxd.socket\n"));
        let a = tray_autostart(&l);
        assert!(a.contains("\nExec=\"/home/a b%%c/.local/share/ltx/bin/ltx-tray\"\n"), "{a}");
        assert_eq!(quote(Path::new("/a\"b\\c")), "\"/a\\\"b\\\\c\"");
    }
}
