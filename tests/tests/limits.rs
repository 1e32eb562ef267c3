//! Numbers that overflow: a keep-alive beyond the limit is refused where it is typed and capped where it
//! arrives over the wire, so `ltxctl ps` never shows a wrapped-around "0s from now".
use ltx_e2e::*;
use ltx_protocol::{KeepAlive, ModelVariant, Reply, Request};

#[tokio::test]
async fn an_overlong_keep_alive_is_refused_by_ltxctl_and_capped_by_the_daemon() {
    let d = Daemon::start(bins!());
    let o = d.ctl(&["load", "--variant", "dev", "--keep-alive", "4611686018427387904s"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "accepted: {o:?}");
    assert!(err.contains("longer than the limit of 31536000s (1 year)"), "{err}");

    // A client that sends it anyway: kept for the limit, not wrapped around to now.
    let mut c = d.client().await;
    let huge = KeepAlive::Seconds(4611686018427387904);
    c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: Some(huge) }).await.unwrap();
    let Reply::Ps(ps) = c.request(Request::Ps).await.unwrap() else { panic!() };
    let until = ps[0].expires_ms.expect("an expiry");
    let year = 365 * 24 * 3600 * 1000;
    let now = ltxd::store::now_ms();
    assert!(until > now + year - 60_000 && until <= now + year, "{until} is not a year after {now}");
    let text = String::from_utf8_lossy(&d.ctl(&["ps"]).stdout).into_owned();
    assert!(text.contains("3153") && !text.contains(" 0s from now"), "{text}");
}
