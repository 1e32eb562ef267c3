//! The rule table walked end to end: for every generation × variant × pipeline it runs, what `ltxctl submit`
//! sends with no settings and what the daemon records equal the table's defaults ([`ltx_protocol::rules`]).
use ltx_e2e::*;
use ltx_protocol::rules::{GENERATIONS, PIPELINES, VARIANTS};
use ltx_protocol::{Generation, GenerationRequest, ModelVariant, Pipeline};

/// Submits with these arguments and returns the request the daemon recorded.
fn recorded(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "submit", "walking the rule table"];
    all.extend_from_slice(args);
    let o = d.ctl(&all);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {o:?}"));
    let id = v["job"].as_u64().unwrap_or_else(|| panic!("{v}")).to_string();
    let show = d.ctl(&["--json", "show", &id]);
    let rec: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_else(|e| panic!("{e}: {show:?}"));
    rec["request"].clone()
}

fn assert_defaults(got: &serde_json::Value, want: &GenerationRequest, what: &str) {
    let want = ltx_protocol::json::request_json(want);
    for field in ["variant", "pipeline", "width", "height", "frames", "fps", "steps", "guidance_scale", "guidance"] {
        assert_eq!(got[field], want[field], "{what}: {field}");
    }
}

#[test]
fn ltxctl_and_the_daemon_apply_the_tables_defaults() {
    // A submit naming nothing runs the memory decision's variant; on the 128gb profile, with every file there,
    // that is the newest generation's first (tests/tests/doctor.rs walks the decision itself).
    let extra_config = "queue_size = 64\nmemory_profile = \"128gb\"".into();
    let d = Daemon::with(bins!(), Opts { extra_config, ..Opts::default() });
    // The test daemon's models directory has every file: the newest generation is installed, and is the default.
    let newest = Generation::ALL[Generation::ALL.len() - 1];
    let first = ModelVariant::of(newest).next().expect("a variant");
    let want = GenerationRequest::for_pipeline("", first, first.default_pipeline());
    assert_defaults(&recorded(&d, &[]), &want, "no options");
    for g in GENERATIONS {
        for v in VARIANTS.iter().filter(|v| v.generation == g.generation) {
            let want = GenerationRequest::for_pipeline("", v.variant, v.default_pipeline);
            let what = format!("--model {} --variant {}", g.id, v.short);
            assert_defaults(&recorded(&d, &["--model", g.id, "--variant", v.short]), &want, &what);
        }
        let first = ModelVariant::of(g.generation).next().expect("a variant");
        let want = GenerationRequest::for_pipeline("", first, first.default_pipeline());
        assert_defaults(&recorded(&d, &["--model", g.id]), &want, g.id);
    }
    let mut walked = 0;
    for g in GENERATIONS {
        for v in VARIANTS.iter().filter(|v| v.generation == g.generation) {
            let want = GenerationRequest::for_pipeline("", v.variant, v.default_pipeline);
            assert_defaults(&recorded(&d, &["--variant", v.name]), &want, v.name);
            for p in PIPELINES.iter().filter(|p| p.pipeline.runs(v.variant)) {
                let want = GenerationRequest::for_pipeline("", v.variant, p.pipeline);
                assert_eq!((want.steps, want.guidance_scale), {
                    let d = p.pipeline.defaults(v.variant);
                    (d.steps, d.guidance_scale)
                });
                let what = format!("{} × {} × {}", g.name, v.name, p.name);
                assert_defaults(&recorded(&d, &["--variant", v.name, "--pipeline", p.name]), &want, &what);
                walked += 1;
            }
        }
    }
    for p in Pipeline::ALL {
        let want = GenerationRequest::for_pipeline("", ModelVariant::default_in(newest, p).expect("weights"), p);
        assert_defaults(&recorded(&d, &["--pipeline", p.name()]), &want, p.name());
    }
    assert!(walked >= Pipeline::ALL.len(), "{walked}");
}
