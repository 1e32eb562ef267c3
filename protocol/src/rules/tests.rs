use super::*;

#[test]
fn tables_cover_every_variant_and_pipeline_once() {
    assert_eq!(VARIANTS.iter().map(|v| v.variant).collect::<Vec<_>>(), ModelVariant::ALL);
    assert_eq!(PIPELINES.iter().map(|p| p.pipeline).collect::<Vec<_>>(), Pipeline::ALL);
    for v in ModelVariant::ALL {
        assert_eq!(ModelVariant::parse(v.name()), Some(v));
        assert!(v.default_pipeline().runs(v), "{}", v.name());
        assert!(GENERATIONS.iter().any(|g| g.generation == v.rules().generation));
    }
    for p in Pipeline::ALL {
        assert_eq!(Pipeline::parse(p.name()), Some(p));
        assert!(p.runs(ModelVariant::default_for(p)));
    }
    assert_eq!(Pipeline::Distilled.defaults(ModelVariant::Distilled).steps, 8);
    assert_eq!(Pipeline::TwoStage.defaults(ModelVariant::Dev).steps, 40);
    assert_eq!(refusal(ModelVariant::Dev, Pipeline::TwoStage, 40, 3.0), None);
    assert_eq!(refusal(ModelVariant::Distilled, Pipeline::Distilled, 8, 1.0), None);
}

#[test]
fn the_x1_5_upscale_is_ltx_2_3s_and_two_stage_only() {
    let (v23, v2) = (ModelVariant::Ltx23Distilled, ModelVariant::Distilled);
    assert_eq!(upscale_refusal(v23, Pipeline::Distilled, Upscale::X1_5), None);
    assert_eq!(upscale_refusal(ModelVariant::Ltx23Dev, Pipeline::TwoStage, Upscale::X1_5), None);
    let e = upscale_refusal(v2, Pipeline::Distilled, Upscale::X1_5).expect("LTX-2 has no x1.5");
    assert!(e.contains("upscales by 2 only"), "{e}");
    let e = upscale_refusal(ModelVariant::Ltx23Dev, Pipeline::OneStage, Upscale::X1_5).expect("one stage");
    assert!(e.contains("one stage"), "{e}");
    // Stage 1 at 2/3: the full latent sides are multiples of 3 (96 px), the stage-1 ones of 2.
    let sides = Pipeline::Distilled.limits_with(v23, Upscale::X1_5).sides;
    assert_eq!((sides.step, sides.contains(96), sides.contains(128), sides.contains(192)), (96, true, false, true));
    assert_eq!(Pipeline::OneStage.limits_with(ModelVariant::Ltx23Dev, Upscale::X1_5).sides.step, 32);
}

#[test]
fn generations_are_named_once_and_detected_by_model_version() {
    assert_eq!(GENERATIONS.iter().map(|g| g.generation).collect::<Vec<_>>(), Generation::ALL);
    for g in Generation::ALL {
        assert_eq!(Generation::parse(g.id()), Some(g));
    }
    assert_eq!(Generation::from_model_version(None), Ok(Generation::Ltx2));
    assert_eq!(Generation::from_model_version(Some("")), Ok(Generation::Ltx2));
    assert_eq!(Generation::from_model_version(Some("2.3.0")), Ok(Generation::Ltx23));
    assert_eq!(Generation::from_model_version(Some("2.3")), Ok(Generation::Ltx23));
    assert_eq!(Generation::from_model_version(Some("2.5.0")), Err("2.5.0".to_string()));
    // ltx-pipelines' constants: 2.3 runs 30 guided steps with STG on block 28, LTX-2 40 and 29.
    let (a, b) = (Generation::Ltx2.rules(), Generation::Ltx23.rules());
    assert_eq!(
        (a.guided_steps, a.guidance.stg_blocks, b.guided_steps, b.guidance.stg_blocks),
        (40, &[29][..], 30, &[28][..])
    );
}

#[test]
fn limits_per_generation_and_pipeline() {
    let distilled = Pipeline::Distilled.limits(ModelVariant::Distilled);
    assert_eq!(distilled.sides, Progression { min: 64, max: 2048, step: 64 });
    assert_eq!(Pipeline::OneStage.limits(ModelVariant::Dev).sides, Progression { min: 64, max: 2048, step: 32 });
    assert_eq!(distilled.frames, Progression { min: 9, max: 257, step: 8 });
    for g in GENERATIONS {
        let f = Limits::new(g, None).frames;
        assert_eq!((f.min % f.step, f.max % f.step), (1, 1), "{}: frames are k·step+1", g.name);
        assert!(f.contains(g.frames) && Limits::new(g, Some(Upscale::X2)).sides.contains(g.width), "{}", g.name);
    }
    let f = distilled.frames;
    assert_eq!(
        (f.suggest(2001), f.suggest(1), f.suggest(96), f.suggest(97)),
        ("257".into(), "9".into(), "89 or 97".into(), "97".into())
    );
    assert_eq!((f.contains(1), f.contains(9), f.contains(257), f.contains(265)), (false, true, true, false));
    let s = distilled.sides;
    assert_eq!(
        (s.suggest(288), s.suggest(30), s.suggest(4096), s.suggest(2047)),
        ("256 or 320".into(), "64".into(), "2048".into(), "1984 or 2048".into())
    );
    assert_eq!(Progression::multiples(48, 64, 2048), Progression { min: 96, max: 2016, step: 48 });
    assert!(size_help().contains("multiples of 64 for distilled, two-stage, of 32 for one-stage, from 64 to 2048"));
    assert!(frames_help().contains("8k+1 from 9 to 257 (9, 17, …, 257; 97 is 4 s at 24 fps)"), "{}", frames_help());
}
