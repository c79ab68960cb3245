//! Colour: sRGB ↔ CIELAB (D65), distances, and the named palette dominant colours are
//! reported against.

/// A colour in CIELAB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lab {
    /// Lightness, 0–100.
    pub l: f32,
    /// Green (−) to red (+).
    pub a: f32,
    /// Blue (−) to yellow (+).
    pub b: f32,
}

fn linear(channel: u8) -> f32 {
    let c = f32::from(channel) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn f(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

/// Steps of the lookup for CIELAB's `f` over [0, 1].
const STEPS: usize = 4096;

/// Lookups of sRGB 8-bit → linear and of CIELAB's `f` (a cube root, linearly interpolated
/// between 4,097 points: within 5e-6 of the exact value, several times faster than `cbrt`),
/// built once per call site that converts many pixels.
pub struct ToLab {
    table: [f32; 256],
    cube: Vec<f32>,
}

impl std::fmt::Debug for ToLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToLab")
    }
}

impl Default for ToLab {
    fn default() -> Self {
        let mut table = [0.0; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            *slot = linear(i as u8);
        }
        let cube = (0..=STEPS + 1)
            .map(|i| f(i as f32 / STEPS as f32))
            .collect();
        ToLab { table, cube }
    }
}

impl ToLab {
    /// `f(t)` for t in [0, 1] (X, Y and Z of an sRGB colour relative to white stay in it).
    fn f(&self, t: f32) -> f32 {
        let x = t.clamp(0.0, 1.0) * STEPS as f32;
        let i = (x as usize).min(STEPS - 1);
        let (low, high) = (self.cube[i], self.cube[i + 1]);
        low + (high - low) * (x - i as f32)
    }

    /// The Lab colour of an sRGB pixel.
    pub fn lab(&self, [r, g, b]: [u8; 3]) -> Lab {
        let (r, g, b) = (
            self.table[r as usize],
            self.table[g as usize],
            self.table[b as usize],
        );
        let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
        let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
        let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
        let (fx, fy, fz) = (self.f(x), self.f(y), self.f(z));
        Lab {
            l: 116.0 * fy - 16.0,
            a: 500.0 * (fx - fy),
            b: 200.0 * (fy - fz),
        }
    }
}

/// CIE76 colour difference.
pub fn delta_e(p: Lab, q: Lab) -> f32 {
    ((p.l - q.l).powi(2) + (p.a - q.a).powi(2) + (p.b - q.b).powi(2)).sqrt()
}

/// `#rrggbb`.
pub fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Parse `#rrggbb`.
pub fn parse_hex(text: &str) -> Option<[u8; 3]> {
    let digits = text.strip_prefix('#')?;
    if digits.len() != 6 || !digits.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// The colour names dominant colours are reported with (`docs/vision.md` lists them).
pub const PALETTE: &[(&str, [u8; 3])] = &[
    ("black", [0, 0, 0]),
    ("charcoal", [54, 69, 79]),
    ("gray", [128, 128, 128]),
    ("silver", [192, 192, 192]),
    ("white", [255, 255, 255]),
    ("cream", [255, 253, 208]),
    ("beige", [225, 198, 153]),
    ("tan", [210, 180, 140]),
    ("brown", [120, 72, 36]),
    ("maroon", [128, 0, 0]),
    ("red", [220, 30, 40]),
    ("pink", [255, 170, 190]),
    ("magenta", [220, 40, 170]),
    ("orange", [255, 140, 0]),
    ("gold", [212, 175, 55]),
    ("yellow", [255, 220, 30]),
    ("olive", [128, 128, 0]),
    ("green", [40, 160, 60]),
    ("lime", [160, 230, 50]),
    ("teal", [0, 128, 128]),
    ("cyan", [40, 200, 220]),
    ("sky blue", [135, 190, 235]),
    ("blue", [30, 80, 200]),
    ("navy", [20, 30, 90]),
    ("purple", [110, 50, 160]),
    ("lavender", [190, 170, 230]),
];

/// The palette name nearest to `lab`.
pub fn name(to_lab: &ToLab, lab: Lab) -> &'static str {
    PALETTE
        .iter()
        .map(|(name, rgb)| (*name, delta_e(to_lab.lab(*rgb), lab)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("unknown", |(name, _)| name)
}

/// sRGB of a Lab colour (for reporting cluster centres).
pub fn to_rgb(lab: Lab) -> [u8; 3] {
    let fy = (lab.l + 16.0) / 116.0;
    let fx = fy + lab.a / 500.0;
    let fz = fy - lab.b / 200.0;
    let inverse = |t: f32| {
        if t.powi(3) > 0.008_856 {
            t.powi(3)
        } else {
            (t - 16.0 / 116.0) / 7.787
        }
    };
    let (x, y, z) = (inverse(fx) * 0.950_47, inverse(fy), inverse(fz) * 1.088_83);
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z;
    let b = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    let encode = |c: f32| {
        let c = c.clamp(0.0, 1.0);
        let v = if c <= 0.003_130_8 {
            12.92 * c
        } else {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        };
        (v * 255.0).round() as u8
    };
    [encode(r), encode(g), encode(b)]
}
