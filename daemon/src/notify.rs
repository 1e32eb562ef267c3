//! Completion and failure notifications posted by the daemon (notify-rust), so they work when only the CLI is
//! used. Not posted while a client that shows notifications itself (the tray, `Request::ShowsNotifications`) is
//! connected, and — in the default `unfollowed` mode — not for a job a client is following (its terminal already
//! shows the end). The decision is taken when the final event is emitted, before any follower can detach.
use crate::store::Store;
use ltx_protocol::{Event, EventKind, JobId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// `notifications` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Only for jobs no client is following (default).
    Unfollowed,
    Always,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "off" | "false" => Ok(Self::Off),
            "unfollowed" => Ok(Self::Unfollowed),
            "always" | "true" => Ok(Self::Always),
            _ => Err(format!("notifications = {s:?}: use \"unfollowed\" (default), \"always\" or \"off\"")),
        }
    }
}

/// Notifications waiting to be posted; beyond this they are dropped (and logged).
const QUEUE: usize = 32;
/// Notifications whose click/action is still awaited at once; older ones stay on screen without an action.
#[cfg_attr(target_os = "macos", allow(dead_code))]
const MAX_WAITING: usize = 16;

struct Note {
    job: JobId,
    kind: EventKind,
}

pub struct Desktop {
    mode: Mode,
    followers: Mutex<HashMap<JobId, usize>>,
    shows_notifications: AtomicUsize,
    tx: Option<std::sync::mpsc::SyncSender<Note>>,
}

impl Desktop {
    /// Starts the poster thread (none when notifications are off).
    pub fn start(mode: Mode, store: Arc<Mutex<Store>>) -> Self {
        let tx = (mode != Mode::Off).then(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Note>(QUEUE);
            let spawned = std::thread::Builder::new().name("ltxd-notify".into()).spawn(move || {
                let waiting = Arc::new(AtomicUsize::new(0));
                for note in rx {
                    post(&store, note, &waiting);
                }
            });
            if let Err(e) = spawned {
                tracing::warn!("notifications disabled: cannot start their thread: {e}");
            }
            tx
        });
        Self { mode, followers: Mutex::default(), shows_notifications: AtomicUsize::new(0), tx }
    }

    fn followers(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, usize>> {
        self.followers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client follows `job` until the guard drops.
    pub fn follow(self: &Arc<Self>, job: JobId) -> Guard {
        *self.followers().entry(job).or_default() += 1;
        Guard { desktop: self.clone(), job: Some(job) }
    }

    /// A client shows notifications itself until the guard drops.
    pub fn client_notifies(self: &Arc<Self>) -> Guard {
        self.shows_notifications.fetch_add(1, Ordering::SeqCst);
        Guard { desktop: self.clone(), job: None }
    }

    /// Called for every emitted event.
    pub fn on_event(&self, event: &Event) {
        if !matches!(event.kind, EventKind::Completed { .. } | EventKind::Failed { .. }) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        if self.shows_notifications.load(Ordering::SeqCst) > 0 {
            return tracing::debug!(job = event.job, "not notifying: a client shows notifications");
        }
        if self.mode == Mode::Unfollowed && self.followers().get(&event.job).is_some_and(|n| *n > 0) {
            return tracing::debug!(job = event.job, "not notifying: a client follows the job");
        }
        if tx.try_send(Note { job: event.job, kind: event.kind.clone() }).is_err() {
            tracing::warn!(job = event.job, "notification dropped: {QUEUE} already waiting");
        }
    }
}

pub struct Guard {
    desktop: Arc<Desktop>,
    job: Option<JobId>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self.job {
            Some(job) => {
                let mut f = self.desktop.followers();
                if let Some(n) = f.get_mut(&job) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        f.remove(&job);
                    }
                }
            }
            None => {
                self.desktop.shows_notifications.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn post(store: &Mutex<Store>, note: Note, waiting: &Arc<AtomicUsize>) {
    use ltx_service::desktop;
    let record = store
        .lock()
        .map_err(|_| "store lock poisoned".to_string())
        .and_then(|s| s.get(note.job).map_err(|e| e.to_string()));
    let prompt = match record {
        Ok(Some(r)) => r.request.prompt,
        Ok(None) => String::new(),
        Err(e) => {
            tracing::warn!(job = note.job, "notification: cannot read the job: {e}");
            String::new()
        }
    };
    let (text, output) = match &note.kind {
        EventKind::Completed { output, duration_ms, .. } => {
            (desktop::completed(&prompt, *duration_ms, output), Some(output.clone()))
        }
        EventKind::Failed { message, .. } => (desktop::failed(&prompt, message), None),
        _ => return,
    };
    let mut n = notify_rust::Notification::new();
    n.appname("ltx").summary(&text.summary).body(&text.body).icon("video-x-generic");
    if output.is_some() {
        n.action("default", "Open").action(desktop::ACTION_OPEN, "Open video");
    }
    match n.show() {
        Ok(handle) => {
            tracing::info!(job = note.job, summary = %text.summary, "notification posted");
            if let Some(out) = output {
                wait_for_click(handle, out, waiting);
            }
        }
        Err(e) => tracing::info!(job = note.job, "cannot post a notification: {e}"),
    }
}

/// Waits (on its own thread) for the person to click the notification or its action, then opens the video.
#[cfg(all(unix, not(target_os = "macos")))]
fn wait_for_click(handle: notify_rust::NotificationHandle, output: PathBuf, waiting: &Arc<AtomicUsize>) {
    if waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
        waiting.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let w = waiting.clone();
    let spawned = std::thread::Builder::new().name("ltxd-notify-action".into()).spawn(move || {
        handle.wait_for_action(|action| {
            if action == "default" || action == ltx_service::desktop::ACTION_OPEN {
                open(&output);
            }
        });
        w.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// macOS: notify-rust's NSUserNotification backend reports no actions to an unbundled daemon.
#[cfg(target_os = "macos")]
fn wait_for_click(_handle: notify_rust::NotificationHandle, _output: PathBuf, _waiting: &Arc<AtomicUsize>) {}

#[cfg(all(unix, not(target_os = "macos")))]
fn open(file: &std::path::Path) {
    match std::process::Command::new("xdg-open")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            tracing::info!(file = %file.display(), "opening the video");
            let _ = child.wait();
        }
        Err(e) => tracing::warn!("cannot run xdg-open: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_suppression() {
        assert_eq!(Mode::parse("off"), Ok(Mode::Off));
        assert_eq!(Mode::parse("unfollowed"), Ok(Mode::Unfollowed));
        assert!(Mode::parse("sometimes").unwrap_err().contains("unfollowed"));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let d = Arc::new(Desktop {
            mode: Mode::Unfollowed,
            followers: Mutex::default(),
            shows_notifications: AtomicUsize::new(0),
            tx: Some(tx),
        });
        let done = |job| Event { job, kind: EventKind::Failed { code: "x".into(), message: "m".into() } };
        let g = d.follow(1);
        d.on_event(&done(1));
        assert!(rx.try_recv().is_err(), "followed job: no notification");
        drop(g);
        d.on_event(&done(1));
        assert_eq!(rx.try_recv().map(|n| n.job).ok(), Some(1));
        let t = d.client_notifies();
        d.on_event(&done(2));
        assert!(rx.try_recv().is_err(), "tray up: no notification");
        drop(t);
        d.on_event(&Event { job: 3, kind: EventKind::Cancelled });
        assert!(rx.try_recv().is_err(), "cancelled: no notification");
        d.on_event(&done(3));
        assert_eq!(rx.try_recv().map(|n| n.job).ok(), Some(3));
    }
}
