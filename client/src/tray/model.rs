//! What the tray shows, as a pure function of the daemon's state: the menu tree, the icon's state, its title
//! (`42%`) and tooltip. The UI layer only renders this, so the whole menu logic is tested without a display.
use ltx_protocol::models::{FileState, ModelsInfo};
use ltx_protocol::{ComponentStatus, Eta, JobId, ModelVariant, Pipeline, Stage};
use ltx_service::desktop::{duration, excerpt};
use std::path::PathBuf;

/// The job being generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Running {
    pub id: JobId,
    pub prompt: String,
    pub stage: Option<String>,
    pub step: u32,
    pub total: u32,
    pub elapsed_ms: u64,
    /// The daemon's whole-job ETA.
    pub eta: Option<Eta>,
}

impl Running {
    /// Of the whole job where its ETA is known (never 100 while it runs), else of the stage's steps.
    pub fn percent(&self) -> u32 {
        match self.eta {
            Some(e) => {
                let whole = self.elapsed_ms.saturating_add(e.remaining_ms);
                (self.elapsed_ms.saturating_mul(100).checked_div(whole).unwrap_or(0) as u32).min(99)
            }
            None => (self.step * 100).checked_div(self.total).unwrap_or(0).min(100),
        }
    }

    /// Takes in a stage or step event of this job (`step` and `total` 0 for a stage).
    pub fn update(&mut self, stage: &Stage, step: u32, total: u32, elapsed_ms: u64, eta: Option<Eta>) {
        (self.stage, self.step, self.total) = (Some(stage.to_string()), step, total);
        (self.elapsed_ms, self.eta) = (elapsed_ms, eta);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub id: JobId,
    pub prompt: String,
    pub output: PathBuf,
}

/// Everything the tray knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub connected: bool,
    /// Set when the person stopped the daemon from the tray: it is not reconnected (which would socket-activate
    /// it again) until they start it.
    pub stopped_by_user: bool,
    pub paused: bool,
    pub pending: u32,
    pub running: Option<Running>,
    /// Last 10 completed jobs with a file, newest first.
    pub recent: Vec<Recent>,
    pub components: Vec<ComponentStatus>,
    pub models: Option<ModelsInfo>,
    pub outputs_dir: Option<PathBuf>,
    /// The daemon's memory decision: the variant a job that names none runs.
    pub decision: Option<ModelVariant>,
    /// The last job failure or action error, shown until the next job starts.
    pub error: Option<String>,
    pub launch_at_login: bool,
}

/// Quick-generate presets, chosen in the Presets submenu.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prefs {
    pub variant: ModelVariant,
    pub pipeline: Pipeline,
    pub size: (u32, u32),
    pub frames: u32,
    /// The person picked the weights or the pipeline; until then the daemon's memory decision picks them.
    pub chosen: bool,
}

/// The table's defaults ([`ltx_protocol::rules`]): what `ltxctl submit` sends with no options.
impl Default for Prefs {
    fn default() -> Self {
        let r = ltx_protocol::GenerationRequest::new("");
        Self { variant: r.variant, pipeline: r.pipeline, size: (r.width, r.height), frames: r.frames, chosen: false }
    }
}

impl Prefs {
    /// Choosing weights keeps the pipeline when it runs them, else picks the variant's default pipeline.
    pub fn set_variant(&mut self, v: ModelVariant) {
        self.chosen = true;
        self.variant = v;
        if !self.pipeline.runs(v) {
            self.pipeline = v.default_pipeline();
        }
    }

    /// Choosing a pipeline keeps the weights when it runs them, else picks the pipeline's default variant.
    pub fn set_pipeline(&mut self, p: Pipeline) {
        self.chosen = true;
        self.pipeline = p;
        if !p.runs(self.variant) {
            self.variant = ModelVariant::default_for(p);
        }
    }
}

impl Prefs {
    /// Follows the daemon's memory decision (as `ltxctl submit` with no options does) until the person picks.
    pub fn follow(&mut self, decision: Option<ModelVariant>) {
        if let (false, Some(v)) = (self.chosen, decision) {
            (self.variant, self.pipeline) = (v, v.default_pipeline());
        }
    }
}

/// Size presets: the menu offers those the chosen pipeline takes ([`Prefs::sizes`]).
pub const SIZES: [(u32, u32); 4] = [(768, 512), (512, 768), (1024, 576), (1280, 704)];
/// Length presets in seconds: each is offered as a frame count the pipeline takes ([`Prefs::durations`]).
pub const SECONDS: [u32; 4] = [2, 4, 5, 10];

impl Prefs {
    /// The size presets the pipeline takes on this variant's generation ([`ltx_protocol::rules::Limits`]).
    pub fn sizes(&self) -> Vec<(u32, u32)> {
        let sides = self.pipeline.limits(self.variant).sides;
        SIZES.into_iter().filter(|(w, h)| sides.contains(*w) && sides.contains(*h)).collect()
    }

    /// The length presets as (frames, label): the first frame count the pipeline takes at or after each length,
    /// at the generation's fps ([`ltx_protocol::rules::Limits`]).
    pub fn durations(&self) -> Vec<(u32, String)> {
        let frames = self.pipeline.limits(self.variant).frames;
        let fps = self.variant.generation().fps;
        SECONDS.iter().filter_map(|s| Some((frames.ceil(s * fps)?, format!("{s} s")))).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    NotRunning,
    Idle,
    Generating(u32),
    Paused,
    Error,
}

/// A menu entry; `id`s are what a click reports (see [`Action::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Item { id: String, label: String, enabled: bool },
    Check { id: String, label: String, checked: bool, enabled: bool },
    Sub { label: String, children: Vec<Node> },
    Separator,
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> Node {
    Node::Item { id: id.into(), label: label.into(), enabled }
}

fn info(label: impl Into<String>) -> Node {
    item("", label, false)
}

fn check(id: impl Into<String>, label: impl Into<String>, checked: bool) -> Node {
    Node::Check { id: id.into(), label: label.into(), checked, enabled: true }
}

/// What a menu click asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Cancel,
    Pause,
    Resume,
    QuickGenerate,
    FromClipboard,
    Variant(ModelVariant),
    Pipeline(Pipeline),
    Size(u32, u32),
    Frames(u32),
    Open(JobId),
    Reveal(JobId),
    OpenOutputs,
    UnloadAll,
    Pull(ModelVariant),
    ChooseModelsDir,
    StartDaemon,
    StopDaemon,
    LaunchAtLogin,
    Quit,
}

impl Action {
    pub fn id(&self) -> String {
        match self {
            Self::Cancel => "cancel".into(),
            Self::Pause => "pause".into(),
            Self::Resume => "resume".into(),
            Self::QuickGenerate => "quick".into(),
            Self::FromClipboard => "clipboard".into(),
            Self::Variant(v) => format!("variant:{}", v.name()),
            Self::Pipeline(p) => format!("pipeline:{}", p.name()),
            Self::Size(w, h) => format!("size:{w}x{h}"),
            Self::Frames(n) => format!("frames:{n}"),
            Self::Open(j) => format!("open:{j}"),
            Self::Reveal(j) => format!("reveal:{j}"),
            Self::OpenOutputs => "outputs".into(),
            Self::UnloadAll => "unload".into(),
            Self::Pull(v) => format!("pull:{}", v.name()),
            Self::ChooseModelsDir => "models-dir".into(),
            Self::StartDaemon => "start".into(),
            Self::StopDaemon => "stop".into(),
            Self::LaunchAtLogin => "login".into(),
            Self::Quit => "quit".into(),
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        let variant = |s: &str| ModelVariant::ALL.into_iter().find(|v| v.name() == s);
        Some(match id.split_once(':') {
            None => match id {
                "cancel" => Self::Cancel,
                "pause" => Self::Pause,
                "resume" => Self::Resume,
                "quick" => Self::QuickGenerate,
                "clipboard" => Self::FromClipboard,
                "outputs" => Self::OpenOutputs,
                "unload" => Self::UnloadAll,
                "models-dir" => Self::ChooseModelsDir,
                "start" => Self::StartDaemon,
                "stop" => Self::StopDaemon,
                "login" => Self::LaunchAtLogin,
                "quit" => Self::Quit,
                _ => return None,
            },
            Some(("variant", v)) => Self::Variant(variant(v)?),
            Some(("pipeline", p)) => Self::Pipeline(Pipeline::parse(p)?),
            Some(("size", s)) => {
                let (w, h) = s.split_once('x')?;
                Self::Size(w.parse().ok()?, h.parse().ok()?)
            }
            Some(("frames", n)) => Self::Frames(n.parse().ok()?),
            Some(("open", j)) => Self::Open(j.parse().ok()?),
            Some(("reveal", j)) => Self::Reveal(j.parse().ok()?),
            Some(("pull", v)) => Self::Pull(variant(v)?),
            _ => return None,
        })
    }
}

fn act(a: Action, label: impl Into<String>, enabled: bool) -> Node {
    item(a.id(), label, enabled)
}

pub fn icon_state(s: &State) -> IconState {
    if !s.connected {
        IconState::NotRunning
    } else if let Some(r) = &s.running {
        IconState::Generating(r.percent())
    } else if s.error.is_some() {
        IconState::Error
    } else if s.paused {
        IconState::Paused
    } else {
        IconState::Idle
    }
}

/// Text next to the icon (macOS menu bar; the SNI label on Linux): the progress while generating.
pub fn title(s: &State) -> String {
    match icon_state(s) {
        IconState::Generating(p) => format!("{p}%"),
        _ => String::new(),
    }
}

/// One line saying what the daemon is doing (the tooltip and the menu's first line).
pub fn headline(s: &State) -> String {
    match icon_state(s) {
        IconState::NotRunning if s.stopped_by_user => "LTX: daemon stopped".into(),
        IconState::NotRunning => "LTX: daemon not running".into(),
        IconState::Generating(p) => {
            let r = s.running.as_ref().map(|r| excerpt(&r.prompt, 40)).unwrap_or_default();
            format!("LTX: generating {p}% — {r}")
        }
        IconState::Error => format!("LTX: error — {}", excerpt(s.error.as_deref().unwrap_or_default(), 60)),
        IconState::Paused => format!("LTX: paused, {} waiting", s.pending),
        IconState::Idle => "LTX: idle".into(),
    }
}

/// Whether every file `variant` needs (for its default pipeline) is installed; `None` when unknown.
pub fn installed(models: &ModelsInfo, variant: ModelVariant) -> Option<bool> {
    let needed = models.needed(variant, variant.default_pipeline());
    (!needed.is_empty()).then(|| needed.iter().all(|f| matches!(f.state, FileState::Installed { .. })))
}

pub fn menu(s: &State, p: &Prefs) -> Vec<Node> {
    let up = s.connected;
    let mut m = vec![info(headline(s))];
    match &s.running {
        Some(r) => {
            let mut line = format!("Job {}: {}", r.id, excerpt(&r.prompt, 40));
            if let Some(stage) = &r.stage {
                line.push_str(&format!(" — {stage}"));
            }
            line.push_str(&format!(", {}%", r.percent()));
            match r.eta {
                Some(Eta { remaining_ms, measured: true }) => {
                    line.push_str(&format!(", {} left", duration(remaining_ms)))
                }
                Some(Eta { remaining_ms, measured: false }) => {
                    line.push_str(&format!(", about {} left (estimate)", duration(remaining_ms)))
                }
                None => {}
            }
            m.push(info(line));
            m.push(act(Action::Cancel, "Cancel current job", true));
        }
        None => m.push(info("No job running")),
    }
    m.push(Node::Separator);
    m.push(info(format!("Queue: {} waiting{}", s.pending, if s.paused { " (paused)" } else { "" })));
    m.push(if s.paused { act(Action::Resume, "Resume queue", up) } else { act(Action::Pause, "Pause queue", up) });
    m.push(Node::Separator);
    m.push(act(Action::QuickGenerate, "Quick generate…", up));
    m.push(act(Action::FromClipboard, "Generate from clipboard", up));
    let variants =
        ModelVariant::ALL.into_iter().map(|v| check(Action::Variant(v).id(), v.name(), p.variant == v)).collect();
    let pipelines =
        Pipeline::ALL.into_iter().map(|x| check(Action::Pipeline(x).id(), x.name(), p.pipeline == x)).collect();
    let sizes = p
        .sizes()
        .into_iter()
        .map(|(w, h)| check(Action::Size(w, h).id(), format!("{w}×{h}"), p.size == (w, h)))
        .collect();
    let durations = p
        .durations()
        .into_iter()
        .map(|(n, label)| check(Action::Frames(n).id(), format!("{label} ({n} frames)"), p.frames == n))
        .collect();
    m.push(Node::Sub {
        label: "Presets".into(),
        children: vec![
            Node::Sub { label: "Variant".into(), children: variants },
            Node::Sub { label: "Pipeline".into(), children: pipelines },
            Node::Sub { label: "Size".into(), children: sizes },
            Node::Sub { label: "Duration".into(), children: durations },
        ],
    });
    m.push(Node::Separator);
    let recent: Vec<Node> = if s.recent.is_empty() {
        vec![info("No videos yet")]
    } else {
        s.recent
            .iter()
            .map(|r| Node::Sub {
                label: format!("{}: {}", r.id, excerpt(&r.prompt, 40)),
                children: vec![
                    act(Action::Open(r.id), "Open", true),
                    act(Action::Reveal(r.id), "Show in folder", true),
                ],
            })
            .collect()
    };
    m.push(Node::Sub { label: "Recent outputs".into(), children: recent });
    m.push(act(Action::OpenOutputs, "Open outputs folder", s.outputs_dir.is_some()));
    let mut models = Vec::new();
    if s.components.is_empty() {
        models.push(info("Nothing loaded"));
    }
    for c in &s.components {
        let gb = c.bytes as f64 / 1e9;
        models.push(info(format!("Loaded: {} ({}, {gb:.1} GB)", c.name, c.variant.name())));
    }
    models.push(act(Action::UnloadAll, "Unload all", up && !s.components.is_empty()));
    models.push(Node::Separator);
    for v in ModelVariant::ALL {
        let state = s.models.as_ref().and_then(|mi| installed(mi, v));
        let label = match state {
            Some(true) => format!("{}: installed", v.name()),
            Some(false) => format!("{}: missing", v.name()),
            None => format!("{}: unknown", v.name()),
        };
        models.push(info(label));
        if state == Some(false) {
            models.push(act(Action::Pull(v), format!("Download {}…", v.name()), up));
        }
    }
    if let Some(mi) = &s.models {
        models.push(info(format!("Folder: {}", mi.dir.display())));
    }
    models.push(act(Action::ChooseModelsDir, "Choose models folder…", up));
    m.push(Node::Sub { label: "Models".into(), children: models });
    m.push(Node::Separator);
    m.push(if up {
        act(Action::StopDaemon, "Stop daemon", true)
    } else {
        act(Action::StartDaemon, "Start daemon", true)
    });
    m.push(check(Action::LaunchAtLogin.id(), "Launch at login", s.launch_at_login));
    m.push(Node::Separator);
    m.push(act(Action::Quit, "Quit", true));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefs_follow_the_memory_decision_until_the_person_picks() {
        let mut p = Prefs::default();
        p.follow(Some(ModelVariant::Ltx23Distilled));
        assert_eq!((p.variant, p.pipeline), (ModelVariant::Ltx23Distilled, Pipeline::Distilled));
        p.follow(None);
        assert_eq!(p.variant, ModelVariant::Ltx23Distilled, "no decision known: kept");
        p.set_variant(ModelVariant::Dev);
        p.follow(Some(ModelVariant::Ltx23Distilled));
        assert_eq!((p.variant, p.pipeline), (ModelVariant::Dev, Pipeline::TwoStage), "the person's pick stays");
    }

    fn labels(nodes: &[Node], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                Node::Item { label, .. } | Node::Check { label, .. } => out.push(label.clone()),
                Node::Sub { label, children } => {
                    out.push(format!("{label} >"));
                    labels(children, out);
                }
                Node::Separator => out.push("--".into()),
            }
        }
    }

    fn find<'a>(nodes: &'a [Node], id: &str) -> Option<&'a Node> {
        nodes.iter().find_map(|n| match n {
            Node::Item { id: i, .. } | Node::Check { id: i, .. } if i == id => Some(n),
            Node::Sub { children, .. } => find(children, id),
            _ => None,
        })
    }

    #[test]
    fn states_titles_and_menu() {
        let mut s = State::default();
        assert_eq!(icon_state(&s), IconState::NotRunning);
        assert_eq!(headline(&s), "LTX: daemon not running");
        let m = menu(&s, &Prefs::default());
        assert!(matches!(find(&m, "start"), Some(Node::Item { enabled: true, .. })));
        assert!(matches!(find(&m, "pause"), Some(Node::Item { enabled: false, .. })));
        s.connected = true;
        assert_eq!((icon_state(&s), title(&s)), (IconState::Idle, String::new()));
        s.running = Some(Running {
            id: 7,
            prompt: "a red fox in the snow".into(),
            stage: Some("denoising (stage 1)".into()),
            step: 3,
            total: 8,
            elapsed_ms: 38_500,
            eta: Some(Eta { remaining_ms: 65_000, measured: true }),
        });
        s.pending = 2;
        assert_eq!(icon_state(&s), IconState::Generating(37));
        assert_eq!(title(&s), "37%");
        assert_eq!(headline(&s), "LTX: generating 37% — a red fox in the snow");
        let m = menu(&s, &Prefs::default());
        let mut l = Vec::new();
        labels(&m, &mut l);
        assert_eq!(l[1], "Job 7: a red fox in the snow — denoising (stage 1), 37%, 1 min 5 s left");
        // Of the whole job: 38.5 s of 103.5 s; an ETA from past jobs alone says it is one.
        if let Some(r) = s.running.as_mut() {
            r.update(&Stage::EncodingPrompt, 0, 0, 1_000, Some(Eta { remaining_ms: 99_000, measured: false }));
        }
        let mut l = Vec::new();
        labels(&menu(&s, &Prefs::default()), &mut l);
        assert_eq!(l[1], "Job 7: a red fox in the snow — encoding prompt, 1%, about 1 min 39 s left (estimate)");
        if let Some(r) = s.running.as_mut() {
            r.update(&Stage::DecodingVideo, 0, 0, 50_000, None);
        }
        assert_eq!(title(&s), "0%", "no ETA and no steps: nothing to count");
        if let Some(r) = s.running.as_mut() {
            r.update(&Stage::DecodingVideo, 0, 0, 50_000, Some(Eta { remaining_ms: 0, measured: true }));
        }
        assert_eq!(title(&s), "99%", "never 100 % while it runs");
        assert!(l.contains(&"Cancel current job".into()) && l.contains(&"Queue: 2 waiting".into()));
        assert!(matches!(find(&m, "variant:distilled"), Some(Node::Check { checked: true, .. })));
        assert!(matches!(find(&m, "frames:121"), Some(Node::Check { checked: false, .. })));
        assert!(l.contains(&"No videos yet".into()) && l.contains(&"Stop daemon".into()));
        s.running = None;
        s.paused = true;
        assert_eq!(headline(&s), "LTX: paused, 2 waiting");
        assert!(find(&menu(&s, &Prefs::default()), "resume").is_some());
        s.error = Some("model not installed".into());
        assert_eq!(icon_state(&s), IconState::Error);
        s.recent = vec![Recent { id: 3, prompt: "p".into(), output: "/o/p.mp4".into() }];
        let m = menu(&s, &Prefs::default());
        assert!(find(&m, "open:3").is_some() && find(&m, "reveal:3").is_some());
    }

    #[test]
    fn every_action_id_round_trips() {
        let s = State {
            connected: true,
            recent: vec![Recent { id: 3, prompt: "p".into(), output: "/o".into() }],
            running: Some(Running::default()),
            ..Default::default()
        };
        fn walk(nodes: &[Node], n: &mut usize) {
            for node in nodes {
                match node {
                    Node::Item { id, .. } | Node::Check { id, .. } if !id.is_empty() => {
                        assert_eq!(Action::parse(id).map(|a| a.id()).as_deref(), Some(id.as_str()));
                        *n += 1;
                    }
                    Node::Sub { children, .. } => walk(children, n),
                    _ => {}
                }
            }
        }
        let mut n = 0;
        walk(&menu(&s, &Prefs::default()), &mut n);
        assert!(n > 20, "{n}");
        assert_eq!(Action::parse("size:12x"), None);
        assert_eq!(Action::parse("bogus"), None);
    }
}

/// The job the quick-generate dialog submits: the presets plus the pipeline's defaults (as `ltxctl submit`).
pub fn request(p: &Prefs, prompt: &str) -> ltx_protocol::GenerationRequest {
    let mut r = ltx_protocol::GenerationRequest::for_pipeline(prompt.trim(), p.variant, p.pipeline);
    (r.width, r.height) = p.size;
    r.frames = p.frames;
    r
}

/// `distilled, 768×512, 4 s` — shown in the dialog.
pub fn summary(p: &Prefs) -> String {
    let secs = p.durations().into_iter().find(|d| d.0 == p.frames).map_or(format!("{} frames", p.frames), |d| d.1);
    format!("{} / {}, {}×{}, {secs}", p.variant.name(), p.pipeline.name(), p.size.0, p.size.1)
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn presets_make_valid_requests() {
        for v in ModelVariant::ALL {
            for pl in Pipeline::ALL {
                let mut p = Prefs::default();
                p.set_pipeline(pl);
                for size in p.sizes() {
                    for (frames, _) in p.durations() {
                        // Either order of choosing gives a request the daemon accepts.
                        let mut p = Prefs { size, frames, ..Prefs::default() };
                        p.set_variant(v);
                        p.set_pipeline(pl);
                        assert_eq!(p.pipeline, pl);
                        let r = request(&p, "  a fox ");
                        ltx_protocol::validate(r, ltx_protocol::FsCheck::Skip)
                            .unwrap_or_else(|e| panic!("{}: {e}", summary(&p)));
                        let mut p = Prefs { size, frames, ..Prefs::default() };
                        p.set_pipeline(pl);
                        p.set_variant(v);
                        assert_eq!(p.variant, v);
                        let r = request(&p, "  a fox ");
                        assert_eq!(r.prompt, "a fox");
                        ltx_protocol::validate(r, ltx_protocol::FsCheck::Skip)
                            .unwrap_or_else(|e| panic!("{}: {e}", summary(&p)));
                    }
                }
            }
        }
        assert_eq!(summary(&Prefs::default()), "distilled / distilled, 768×512, 4 s");
        // The presets are what the rule table takes: 8k+1 frames at 24 fps, sides ÷64 for distilled.
        let p = Prefs::default();
        let frames: Vec<_> = p.durations().into_iter().map(|(n, _)| n).collect();
        assert_eq!(frames, [49, 97, 121, 241]);
        assert_eq!(p.sizes(), SIZES);
    }

    #[test]
    fn the_form_gives_the_tables_defaults_for_every_generation_variant_and_pipeline() {
        use ltx_protocol::rules::{GENERATIONS, PIPELINES, VARIANTS};
        let new = ltx_protocol::GenerationRequest::new("a fox");
        assert_eq!(request(&Prefs::default(), "a fox"), new);
        for g in GENERATIONS {
            for v in VARIANTS.iter().filter(|v| v.generation == g.generation) {
                let mut p = Prefs::default();
                p.set_variant(v.variant);
                assert_eq!(
                    (p.variant, p.pipeline),
                    (v.variant, if new.pipeline.runs(v.variant) { new.pipeline } else { v.default_pipeline })
                );
                for pl in PIPELINES.iter().filter(|pl| pl.pipeline.runs(v.variant)) {
                    p.set_pipeline(pl.pipeline);
                    assert_eq!(p.variant, v.variant, "{} keeps {}", pl.name, v.name);
                    let want = ltx_protocol::GenerationRequest::for_pipeline("a fox", v.variant, pl.pipeline);
                    assert_eq!(request(&p, "a fox"), want, "{} × {} × {}", g.name, v.name, pl.name);
                }
            }
        }
    }
}
