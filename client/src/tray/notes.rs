//! Notifications posted by the tray (it told the daemon so, and the daemon posts none while it is connected).
//! Clicking the notification or its "Open video" action opens the video.
use ltx_service::desktop::Note;
use std::path::PathBuf;

#[cfg(feature = "notifications")]
pub fn post(note: Note, output: Option<PathBuf>) {
    use ltx_service::desktop::ACTION_OPEN;
    // Showing talks to the notification server (D-Bus / NSUserNotificationCenter) and waiting for a click blocks:
    // both on a thread of their own, never on the UI or IPC thread.
    let spawned = std::thread::Builder::new().name("ltx-tray-notify".into()).spawn(move || {
        let mut n = notify_rust::Notification::new();
        n.appname("LTX").summary(&note.summary).body(&note.body).icon("video-x-generic");
        if output.is_some() {
            n.action("default", "Open").action(ACTION_OPEN, "Open video");
        }
        #[cfg(target_os = "macos")]
        let _ = notify_rust::set_application(ltx_service::TRAY_LABEL);
        match n.show() {
            #[cfg(all(unix, not(target_os = "macos")))]
            Ok(handle) => {
                if let Some(file) = output {
                    handle.wait_for_action(|action| {
                        if action == "default" || action == ACTION_OPEN {
                            super::open(&file, false);
                        }
                    });
                }
            }
            #[cfg(target_os = "macos")]
            Ok(_) => {}
            Err(e) => eprintln!("ltx-tray: cannot post a notification: {e}"),
        }
    });
    if let Err(e) = spawned {
        eprintln!("ltx-tray: cannot post a notification: {e}");
    }
}

#[cfg(not(feature = "notifications"))]
pub fn post(_note: Note, _output: Option<PathBuf>) {}
