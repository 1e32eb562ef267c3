//! LaunchAgent plists (launchd.plist(5)) and the tray's `Info.plist`, generated with the `plist` crate (which
//! escapes paths, so `&` or `<` in a user name cannot break the XML).
use crate::layout::Layout;
use crate::SERVICE_LABEL;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchAgent {
    pub label: String,
    /// Absolute paths: launchd does not search `PATH` or expand `~`.
    pub program_arguments: Vec<String>,
    pub run_at_load: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// `Interactive`: generation is user-requested work and must not be throttled like `Background`.
    pub process_type: String,
    /// Seconds between respawns after a crash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_interval: Option<u32>,
    /// Seconds launchd waits after SIGTERM before SIGKILL (the daemon stops at a step boundary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_time_out: Option<u32>,
    /// Without these launchd sends stdout/stderr to /dev/null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_out_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_error_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_load_to_session_type: Option<String>,
    /// launchd-owned sockets, adopted by the daemon with `launch_activate_socket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<BTreeMap<String, Socket>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeepAlive {
    /// `false`: restart only after a non-zero exit (`ltxctl daemon stop` exits 0 and stays stopped).
    pub successful_exit: bool,
    /// `true`: restart after death by a signal.
    pub crashed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Socket {
    pub sock_path_name: String,
    /// Decimal mode: 384 = 0600.
    pub sock_path_mode: u32,
    pub sock_family: String,
    pub sock_type: String,
}

/// The daemon's agent: started at login, restarted on crash, owning the socket.
pub fn daemon_agent(l: &Layout) -> LaunchAgent {
    let log = |name: &str| Some(l.log_dir.join(name).display().to_string());
    let socket = Socket {
        sock_path_name: l.socket.display().to_string(),
        sock_path_mode: 0o600,
        sock_family: "Unix".into(),
        sock_type: "stream".into(),
    };
    LaunchAgent {
        label: SERVICE_LABEL.into(),
        program_arguments: vec![l.daemon().display().to_string()],
        run_at_load: true,
        keep_alive: Some(KeepAlive { successful_exit: false, crashed: true }),
        process_type: "Interactive".into(),
        throttle_interval: Some(10),
        exit_time_out: Some(30),
        standard_out_path: log("ltxd.out.log"),
        standard_error_path: log("ltxd.err.log"),
        limit_load_to_session_type: None,
        sockets: Some(BTreeMap::from([(crate::LAUNCHD_SOCKET_NAME.to_string(), socket)])),
    }
}

/// The tray's login item: started once at login in the GUI session, not restarted when the person quits it.
pub fn tray_agent(l: &Layout) -> LaunchAgent {
    LaunchAgent {
        label: crate::TRAY_LABEL.into(),
        program_arguments: vec![l.tray().display().to_string()],
        run_at_load: true,
        keep_alive: None,
        process_type: "Interactive".into(),
        throttle_interval: None,
        exit_time_out: None,
        standard_out_path: None,
        standard_error_path: Some(l.log_dir.join("ltx-tray.err.log").display().to_string()),
        limit_load_to_session_type: Some("Aqua".into()),
        sockets: None,
    }
}

/// XML plist bytes.
pub fn to_xml<T: Serialize>(value: &T) -> Result<Vec<u8>, plist::Error> {
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, value)?;
    Ok(out)
}

/// `Contents/Info.plist` of `LTX.app`: a menu-bar-only agent app (`LSUIElement`) with a stable bundle id, which
/// notifications and the login item are attributed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoPlist {
    #[serde(rename = "CFBundleIdentifier")]
    pub bundle_identifier: String,
    #[serde(rename = "CFBundleName")]
    pub bundle_name: String,
    #[serde(rename = "CFBundleDisplayName")]
    pub display_name: String,
    #[serde(rename = "CFBundleExecutable")]
    pub executable: String,
    #[serde(rename = "CFBundlePackageType")]
    pub package_type: String,
    #[serde(rename = "CFBundleInfoDictionaryVersion")]
    pub info_dictionary_version: String,
    #[serde(rename = "CFBundleShortVersionString")]
    pub short_version: String,
    #[serde(rename = "CFBundleVersion")]
    pub version: String,
    #[serde(rename = "LSMinimumSystemVersion")]
    pub minimum_system_version: String,
    #[serde(rename = "LSUIElement")]
    pub ui_element: bool,
    #[serde(rename = "NSHighResolutionCapable")]
    pub high_resolution: bool,
}

pub fn tray_info_plist(version: &str) -> InfoPlist {
    InfoPlist {
        bundle_identifier: crate::TRAY_LABEL.into(),
        bundle_name: "LTX".into(),
        display_name: "LTX".into(),
        executable: crate::layout::TRAY_BINARY.into(),
        package_type: "APPL".into(),
        info_dictionary_version: "6.0".into(),
        short_version: version.into(),
        version: version.into(),
        minimum_system_version: "13.0".into(),
        ui_element: true,
        high_resolution: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltx_protocol::paths::{Env, Os};
    use plist::Value;
    use std::ffi::OsString;

    fn dict(v: &Value) -> &plist::Dictionary {
        v.as_dictionary().expect("a dictionary")
    }

    #[test]
    fn daemon_plist_parsed_back_key_by_key() {
        let f = |k: &str| (k == "HOME").then(|| OsString::from("/Users/a&b <me>"));
        let sock = "/Users/a&b <me>/Library/Application Support/ltx/ltxd.sock";
        let l = Layout::new(Os::Mac, &Env(&f), 501, sock.into());
        let xml = to_xml(&daemon_agent(&l)).unwrap();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.contains("a&amp;b &lt;me&gt;"), "{text}");
        let v = Value::from_reader_xml(&xml[..]).unwrap();
        let d = dict(&v);
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Label",
                "ProgramArguments",
                "RunAtLoad",
                "KeepAlive",
                "ProcessType",
                "ThrottleInterval",
                "ExitTimeOut",
                "StandardOutPath",
                "StandardErrorPath",
                "Sockets"
            ]
        );
        assert_eq!(d["Label"].as_string(), Some("com.ltx.ltxd"));
        let args = d["ProgramArguments"].as_array().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].as_string(), Some("/Users/a&b <me>/Library/Application Support/ltx/bin/ltxd"));
        assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
        let ka = dict(&d["KeepAlive"]);
        assert_eq!(ka.len(), 2);
        assert_eq!(ka["SuccessfulExit"].as_boolean(), Some(false));
        assert_eq!(ka["Crashed"].as_boolean(), Some(true));
        assert_eq!(d["ProcessType"].as_string(), Some("Interactive"));
        assert_eq!(d["ThrottleInterval"].as_unsigned_integer(), Some(10));
        assert_eq!(d["ExitTimeOut"].as_unsigned_integer(), Some(30));
        assert_eq!(d["StandardOutPath"].as_string(), Some("/Users/a&b <me>/Library/Logs/ltx/ltxd.out.log"));
        assert_eq!(d["StandardErrorPath"].as_string(), Some("/Users/a&b <me>/Library/Logs/ltx/ltxd.err.log"));
        let sockets = dict(&d["Sockets"]);
        assert_eq!(sockets.keys().collect::<Vec<_>>(), ["Listener"]);
        let s = dict(&sockets["Listener"]);
        assert_eq!(s["SockPathName"].as_string(), Some(sock));
        assert_eq!(s["SockPathMode"].as_unsigned_integer(), Some(384));
        assert_eq!(s["SockFamily"].as_string(), Some("Unix"));
        assert_eq!(s["SockType"].as_string(), Some("stream"));
        // And it round-trips through the typed struct.
        let back: LaunchAgent = plist::from_bytes(&xml).unwrap();
        assert_eq!(back, daemon_agent(&l));
    }

    #[test]
    fn tray_plists() {
        let f = |k: &str| (k == "HOME").then(|| OsString::from("/Users/me"));
        let l = Layout::new(Os::Mac, &Env(&f), 501, "/s".into());
        let v = Value::from_reader_xml(&to_xml(&tray_agent(&l)).unwrap()[..]).unwrap();
        let d = dict(&v);
        assert_eq!(d["Label"].as_string(), Some("com.ltx.tray"));
        assert_eq!(
            d["ProgramArguments"].as_array().unwrap()[0].as_string(),
            Some("/Users/me/Applications/LTX.app/Contents/MacOS/ltx-tray")
        );
        assert_eq!(d["LimitLoadToSessionType"].as_string(), Some("Aqua"));
        assert!(d.get("KeepAlive").is_none() && d.get("Sockets").is_none());
        let v = Value::from_reader_xml(&to_xml(&tray_info_plist("0.1.0")).unwrap()[..]).unwrap();
        let d = dict(&v);
        assert_eq!(d["CFBundleIdentifier"].as_string(), Some("com.ltx.tray"));
        assert_eq!(d["CFBundleExecutable"].as_string(), Some("ltx-tray"));
        assert_eq!(d["CFBundlePackageType"].as_string(), Some("APPL"));
        assert_eq!(d["CFBundleInfoDictionaryVersion"].as_string(), Some("6.0"));
        assert_eq!(d["CFBundleShortVersionString"].as_string(), Some("0.1.0"));
        assert_eq!(d["LSUIElement"].as_boolean(), Some(true));
        assert_eq!(d["LSMinimumSystemVersion"].as_string(), Some("13.0"));
        assert_eq!(d.len(), 11);
    }
}
