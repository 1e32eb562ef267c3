//! Native input for the tray, never blocking its event loop: the quick-generate prompt, the clipboard and the
//! models-folder chooser. Linux: GTK dialogs answered through their `response` signal; macOS: AppleScript's
//! standard `display dialog` / `choose folder` (run by `osascript` on a thread) and `pbpaste`.
use std::path::PathBuf;

/// Where answers go (the UI turns them into requests).
pub type Answer = Box<dyn Fn(Reply) + Send + 'static>;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Prompt(String),
    ModelsDir(PathBuf),
}

pub const PROMPT_TITLE: &str = "LTX — Quick generate";

#[cfg(target_os = "linux")]
pub fn ask_prompt(summary: &str, answer: Answer) {
    use gtk::prelude::*;
    let dialog = gtk::Dialog::with_buttons(
        Some(PROMPT_TITLE),
        None::<&gtk::Window>,
        gtk::DialogFlags::empty(),
        &[("Cancel", gtk::ResponseType::Cancel), ("Generate", gtk::ResponseType::Accept)],
    );
    dialog.set_default_response(gtk::ResponseType::Accept);
    dialog.set_keep_above(true);
    let area = dialog.content_area();
    area.set_spacing(8);
    area.set_border_width(12);
    area.pack_start(&gtk::Label::new(Some(&format!("Describe the video ({summary}):"))), false, false, 0);
    let entry = gtk::Entry::new();
    entry.set_activates_default(true);
    entry.set_width_chars(60);
    entry.set_placeholder_text(Some("a red fox running through fresh snow at dawn"));
    area.pack_start(&entry, false, false, 0);
    dialog.connect_response(move |d, response| {
        let text = entry.text().trim().to_string();
        if response == gtk::ResponseType::Accept && !text.is_empty() {
            answer(Reply::Prompt(text));
        }
        d.close();
    });
    dialog.show_all();
    dialog.present();
}

#[cfg(target_os = "linux")]
pub fn clipboard(answer: Answer) {
    let cb = gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD);
    cb.request_text(move |_, text| {
        if let Some(t) = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
            answer(Reply::Prompt(t));
        }
    });
}

#[cfg(target_os = "linux")]
pub fn choose_folder(answer: Answer) {
    use gtk::prelude::*;
    let dialog = gtk::FileChooserDialog::with_buttons(
        Some("LTX — Choose the models folder"),
        None::<&gtk::Window>,
        gtk::FileChooserAction::SelectFolder,
        &[("Cancel", gtk::ResponseType::Cancel), ("Choose", gtk::ResponseType::Accept)],
    );
    dialog.connect_response(move |d, response| {
        if response == gtk::ResponseType::Accept {
            if let Some(p) = d.filename() {
                answer(Reply::ModelsDir(p));
            }
        }
        d.close();
    });
    dialog.show_all();
}

/// AppleScript string literal.
#[cfg(target_os = "macos")]
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs `osascript -e script` on a thread; a non-empty answer (stdout) goes to `f`. Cancel exits non-zero.
#[cfg(target_os = "macos")]
fn osascript(script: String, f: impl FnOnce(String) + Send + 'static) {
    let _ = std::thread::Builder::new().name("ltx-tray-dialog".into()).spawn(move || {
        let out = std::process::Command::new("osascript").arg("-e").arg(&script).output();
        if let Some(out) = out.ok().filter(|o| o.status.success()) {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !text.is_empty() {
                f(text);
            }
        }
    });
}

#[cfg(target_os = "macos")]
pub fn ask_prompt(summary: &str, answer: Answer) {
    let script = format!(
        "text returned of (display dialog {} default answer \"\" with title {} buttons {{\"Cancel\", \"Generate\"}} default button \"Generate\" cancel button \"Cancel\")",
        quoted(&format!("Describe the video ({summary}):")),
        quoted(PROMPT_TITLE)
    );
    osascript(script, move |t| answer(Reply::Prompt(t)));
}

#[cfg(target_os = "macos")]
pub fn clipboard(answer: Answer) {
    let _ = std::thread::Builder::new().name("ltx-tray-clipboard".into()).spawn(move || {
        if let Ok(out) = std::process::Command::new("pbpaste").output() {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !text.is_empty() {
                answer(Reply::Prompt(text));
            }
        }
    });
}

#[cfg(target_os = "macos")]
pub fn choose_folder(answer: Answer) {
    let script = "POSIX path of (choose folder with prompt \"Choose the models folder\")".to_string();
    osascript(script, move |p| answer(Reply::ModelsDir(PathBuf::from(p))));
}
