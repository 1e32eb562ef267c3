//! The tray icon, drawn here (22×22 logical at 2×): one shape per state, so it reads in a monochrome (macOS
//! template) menu bar too — a hollow ring (daemon not running), a disc (idle), a ring filling clockwise
//! (generating), two bars (paused), a cross (error).
use super::model::IconState;

pub const SIZE: u32 = 44;

/// RGBA pixels of the icon for `state`.
pub fn rgba(state: IconState) -> Vec<u8> {
    let c = SIZE as f32 / 2.0;
    let mut px = vec![0u8; (SIZE * SIZE * 4) as usize];
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 + 0.5 - c, y as f32 + 0.5 - c);
            let r = (dx * dx + dy * dy).sqrt();
            let ring = (15.0..=19.0).contains(&r);
            let on = match state {
                IconState::NotRunning => ring,
                IconState::Idle => r <= 19.0,
                IconState::Generating(p) => {
                    // Angle clockwise from 12 o'clock, 0..1.
                    let a = (dx.atan2(-dy) / std::f32::consts::TAU).rem_euclid(1.0);
                    ring || (r <= 12.0 && a * 100.0 <= p as f32)
                }
                IconState::Paused => (dx.abs() - 6.0).abs() <= 3.0 && dy.abs() <= 12.0,
                IconState::Error => r <= 19.0 && ((dx - dy).abs() <= 4.0 || (dx + dy).abs() <= 4.0),
            };
            if on {
                let i = ((y * SIZE + x) * 4) as usize;
                px[i..i + 4].copy_from_slice(&[0x30, 0x30, 0x30, 0xff]);
            }
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_shapes() {
        let all = [
            IconState::NotRunning,
            IconState::Idle,
            IconState::Generating(40),
            IconState::Generating(80),
            IconState::Paused,
            IconState::Error,
        ];
        let images: Vec<_> = all.iter().map(|s| rgba(*s)).collect();
        for (i, a) in images.iter().enumerate() {
            assert_eq!(a.len(), (SIZE * SIZE * 4) as usize);
            assert!(a.iter().skip(3).step_by(4).any(|&alpha| alpha == 0xff));
            for b in &images[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
