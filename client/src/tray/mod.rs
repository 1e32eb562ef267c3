//! `ltx-tray`: the menu-bar client (tray-icon + tao). The main thread runs the event loop and renders
//! [`model::menu`]; the daemon connection lives on its own thread ([`ipc`]) and pushes states into the loop through
//! an `EventLoopProxy`, and menu clicks arrive the same way — nothing polls.
pub mod dialog;
pub mod icon;
mod ipc;
pub mod model;
mod notes;

use ipc::Cmd;
use ltx_protocol::paths::{self, Env, Os};
use model::{Action, IconState, Node, Prefs, State};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tray_icon::menu::{CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{TrayIcon, TrayIconBuilder};

#[derive(Debug, clap::Parser)]
#[command(name = "ltx-tray", version, about = "Menu-bar client of the ltxd video generation daemon")]
struct Args {
    /// Daemon socket (default: $LTX_SOCKET, the config file, or the platform default).
    #[arg(long)]
    socket: Option<PathBuf>,
}

#[derive(Debug)]
enum UiEvent {
    State(Box<State>),
    Menu(String),
    Dialog(dialog::Reply),
}

/// `notifications` from the config file (the daemon's setting; "off" silences the tray too).
fn notifications_on() -> bool {
    let config = paths::config_path(Os::current(), &Env::process());
    let text = ltx_protocol::fsutil::read_trusted(&config).ok().flatten().unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    !matches!(table.get("notifications").and_then(|v| v.as_str()), Some("off" | "false"))
}

/// Opens a file with the default application, or (reveal) the folder holding it.
pub(crate) fn open(file: &Path, reveal: bool) {
    let cmd = match (Os::current(), reveal) {
        (Os::Mac, true) => vec!["open".into(), "-R".into(), file.as_os_str().to_owned()],
        (Os::Linux, true) => crate::platform::open_command(Os::Linux, file.parent().unwrap_or(Path::new("/"))),
        (os, false) => crate::platform::open_command(os, file),
    };
    let _ = std::thread::Builder::new().name("ltx-tray-open".into()).spawn(move || {
        match std::process::Command::new(&cmd[0]).args(&cmd[1..]).stdin(std::process::Stdio::null()).spawn() {
            Ok(mut child) => drop(child.wait()),
            Err(e) => eprintln!("ltx-tray: cannot run {}: {e}", cmd[0].to_string_lossy()),
        }
    });
}

/// A rendered menu entry whose text, state or check mark can change in place.
enum Handle {
    Item(MenuItem),
    Check(CheckMenuItem),
}

/// What decides whether the menu can be updated in place: kinds, ids and submenu labels in order.
fn shape(nodes: &[Node], out: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::Item { id, .. } => out.push(format!("i:{id}")),
            Node::Check { id, .. } => out.push(format!("c:{id}")),
            Node::Separator => out.push("-".into()),
            Node::Sub { label, children } => {
                out.push(format!("s:{label}"));
                shape(children, out);
                out.push("/s".into());
            }
        }
    }
}

fn leaves(nodes: &[Node], out: &mut Vec<Node>) {
    for n in nodes {
        match n {
            Node::Sub { children, .. } => leaves(children, out),
            Node::Separator => {}
            leaf => out.push(leaf.clone()),
        }
    }
}

fn build(nodes: &[Node], append: &mut dyn FnMut(&dyn IsMenuItem), handles: &mut Vec<Handle>) {
    for n in nodes {
        match n {
            Node::Item { id, label, enabled } => {
                let it = MenuItem::with_id(id.as_str(), label, *enabled, None);
                append(&it);
                handles.push(Handle::Item(it));
            }
            Node::Check { id, label, checked, enabled } => {
                let it = CheckMenuItem::with_id(id.as_str(), label, *enabled, *checked, None);
                append(&it);
                handles.push(Handle::Check(it));
            }
            Node::Separator => append(&PredefinedMenuItem::separator()),
            Node::Sub { label, children } => {
                let sub = Submenu::new(label, true);
                build(children, &mut |c| drop(sub.append(c)), handles);
                append(&sub);
            }
        }
    }
}

struct Ui {
    tray: Option<TrayIcon>,
    state: State,
    prefs: Prefs,
    shape: Vec<String>,
    leaves: Vec<Node>,
    handles: Vec<Handle>,
    icon: Option<IconState>,
}

impl Ui {
    fn render(&mut self) {
        let Some(tray) = &self.tray else { return };
        let nodes = model::menu(&self.state, &self.prefs);
        let mut sh = Vec::new();
        shape(&nodes, &mut sh);
        let mut lv = Vec::new();
        leaves(&nodes, &mut lv);
        if sh == self.shape {
            for ((new, old), h) in lv.iter().zip(&self.leaves).zip(&self.handles) {
                match (new, old, h) {
                    (
                        Node::Item { label, enabled, .. },
                        Node::Item { label: l0, enabled: e0, .. },
                        Handle::Item(it),
                    ) => {
                        if label != l0 {
                            it.set_text(label);
                        }
                        if enabled != e0 {
                            it.set_enabled(*enabled);
                        }
                    }
                    (Node::Check { label, checked, .. }, Node::Check { label: l0, .. }, Handle::Check(it)) => {
                        if label != l0 {
                            it.set_text(label);
                        }
                        if it.is_checked() != *checked {
                            it.set_checked(*checked);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let menu = Menu::new();
            let mut handles = Vec::new();
            build(&nodes, &mut |i| drop(menu.append(i)), &mut handles);
            tray.set_menu(Some(Box::new(menu)));
            self.handles = handles;
            self.shape = sh;
        }
        self.leaves = lv;
        let state = model::icon_state(&self.state);
        if self.icon != Some(state) {
            if let Ok(icon) = tray_icon::Icon::from_rgba(icon::rgba(state), icon::SIZE, icon::SIZE) {
                #[cfg(target_os = "macos")]
                let _ = tray.set_icon_templated(Some(icon));
                #[cfg(not(target_os = "macos"))]
                let _ = tray.set_icon(Some(icon));
            }
            self.icon = Some(state);
        }
        tray.set_title(Some(model::title(&self.state)));
        let _ = tray.set_tooltip(Some(model::headline(&self.state)));
    }
}

pub fn main() -> ExitCode {
    use clap::Parser;
    let args = Args::parse();
    let explicit_socket = args.socket.is_some();
    let socket = crate::platform::socket_path(args.socket);
    #[cfg(target_os = "linux")]
    if let Err(e) = gtk::init() {
        eprintln!("ltx-tray: cannot open the display: {e}");
        return ExitCode::FAILURE;
    }
    #[allow(unused_mut)]
    let mut event_loop = EventLoopBuilder::<UiEvent>::with_user_event().build();
    #[cfg(target_os = "macos")]
    {
        // A menu-bar-only app: no Dock icon, no app menu (LSUIElement in the bundle's Info.plist does the same).
        use tao::platform::macos::{ActivationPolicy, EventLoopExtMacOS};
        event_loop.set_activation_policy(ActivationPolicy::Accessory);
    }
    let proxy = event_loop.create_proxy();
    let p = proxy.clone();
    MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
        let _ = p.send_event(UiEvent::Menu(e.id.0));
    }));
    let p = proxy.clone();
    let cfg = ipc::Config { socket, explicit_socket, notifications: notifications_on() };
    let ipc = match ipc::spawn(cfg, move |s| drop(p.send_event(UiEvent::State(Box::new(s))))) {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("ltx-tray: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ui = Ui {
        tray: None,
        state: State::default(),
        prefs: Prefs::default(),
        shape: Vec::new(),
        leaves: Vec::new(),
        handles: Vec::new(),
        icon: None,
    };
    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            // Created once the loop runs (required on macOS).
            Event::NewEvents(StartCause::Init) => {
                let state = model::icon_state(&ui.state);
                let built = tray_icon::Icon::from_rgba(icon::rgba(state), icon::SIZE, icon::SIZE)
                    .map_err(|e| e.to_string())
                    .and_then(|icon| {
                        // macOS: a template image, recoloured for a light or dark menu bar.
                        #[cfg(target_os = "macos")]
                        let builder = TrayIconBuilder::new().with_icon_templated(icon);
                        #[cfg(not(target_os = "macos"))]
                        let builder = TrayIconBuilder::new().with_icon(icon);
                        builder
                            .with_id("ltx")
                            .with_tooltip(model::headline(&ui.state))
                            .with_title("")
                            .build()
                            .map_err(|e| e.to_string())
                    });
                match built {
                    Ok(t) => {
                        ui.tray = Some(t);
                        ui.icon = Some(state);
                        ui.render();
                        #[cfg(target_os = "macos")]
                        wake_run_loop();
                    }
                    Err(e) => {
                        eprintln!("ltx-tray: cannot create the tray icon: {e}");
                        *control_flow = ControlFlow::ExitWithCode(1);
                    }
                }
            }
            Event::UserEvent(UiEvent::State(s)) => {
                ui.state = *s;
                ui.prefs.follow(ui.state.decision);
                ui.render();
            }
            Event::UserEvent(UiEvent::Dialog(dialog::Reply::Prompt(text))) => {
                let req = model::request(&ui.prefs, &text);
                send(&ipc, Cmd::Submit(Box::new(req)));
            }
            Event::UserEvent(UiEvent::Dialog(dialog::Reply::ModelsDir(dir))) => send(&ipc, Cmd::SetModelsDir(dir)),
            Event::UserEvent(UiEvent::Menu(id)) => {
                let Some(action) = Action::parse(&id) else { return };
                let answer = |proxy: &EventLoopProxy<UiEvent>| -> dialog::Answer {
                    let p = proxy.clone();
                    Box::new(move |r| drop(p.send_event(UiEvent::Dialog(r))))
                };
                match action {
                    Action::Cancel => send(&ipc, Cmd::Cancel),
                    Action::Pause => send(&ipc, Cmd::Pause),
                    Action::Resume => send(&ipc, Cmd::Resume),
                    Action::QuickGenerate => dialog::ask_prompt(&model::summary(&ui.prefs), answer(&proxy)),
                    Action::FromClipboard => dialog::clipboard(answer(&proxy)),
                    Action::Variant(v) => ui.prefs.set_variant(v),
                    Action::Pipeline(x) => ui.prefs.set_pipeline(x),
                    Action::Size(w, h) => ui.prefs.size = (w, h),
                    Action::Frames(n) => ui.prefs.frames = n,
                    Action::Open(job) | Action::Reveal(job) => {
                        if let Some(r) = ui.state.recent.iter().find(|r| r.id == job) {
                            open(&r.output, matches!(action, Action::Reveal(_)));
                        }
                    }
                    Action::OpenOutputs => {
                        if let Some(dir) = &ui.state.outputs_dir {
                            open(dir, false);
                        }
                    }
                    Action::UnloadAll => send(&ipc, Cmd::UnloadAll),
                    Action::Pull(v) => send(&ipc, Cmd::Pull(v)),
                    Action::ChooseModelsDir => dialog::choose_folder(answer(&proxy)),
                    Action::StartDaemon => send(&ipc, Cmd::StartDaemon),
                    Action::StopDaemon => send(&ipc, Cmd::StopDaemon),
                    Action::LaunchAtLogin => send(&ipc, Cmd::SetLaunchAtLogin(!ui.state.launch_at_login)),
                    Action::Quit => {
                        send(&ipc, Cmd::Quit);
                        ui.tray = None;
                        *control_flow = ControlFlow::Exit;
                        return;
                    }
                }
                // Presets and check marks re-render from the model (a check item toggles itself on click).
                ui.render();
            }
            _ => {}
        }
    })
}

/// Never blocks the event loop: a full command queue (64) drops the click, with a line on stderr.
fn send(tx: &tokio::sync::mpsc::Sender<Cmd>, cmd: Cmd) {
    if let Err(e) = tx.try_send(cmd) {
        eprintln!("ltx-tray: busy, ignoring a click: {e}");
    }
}

/// tray-icon#90: the status item appears only once the run loop turns after its creation.
#[cfg(target_os = "macos")]
fn wake_run_loop() {
    extern "C" {
        fn CFRunLoopGetMain() -> *mut std::ffi::c_void;
        fn CFRunLoopWakeUp(rl: *mut std::ffi::c_void);
    }
    // SAFETY: CoreFoundation calls on the main thread with the main run loop, which always exists.
    unsafe { CFRunLoopWakeUp(CFRunLoopGetMain()) }
}
