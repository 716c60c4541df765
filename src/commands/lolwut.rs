//! LOLWUT, after Redis 7.0.15's `lolwut.c`, `lolwut5.c` and `lolwut6.c`.
//!
//! Redis 7.0.15 has no art of its own for 7.x: `LOLWUT` prints `Redis ver. 7.0.15`. `VERSION 5`
//! draws Georg Nees's Schotter in Braille characters and `VERSION 6` a city skyline in terminal
//! colours, both from C's `rand()` (glibc's generator here, seeded once per process as Redis
//! seeds it at startup) with the same float arithmetic, so the picture has Redis's size, shape
//! and kind of randomness. The reply is a verbatim string (`txt`) in RESP3, a bulk string in RESP2.

use std::cell::RefCell;

use bytes::Bytes;

use super::args::int;
use super::Ctx;
use crate::protocol::Reply;

const VERSION: &str = "7.0.15";

/// glibc's `rand()` (the TYPE_3 additive feedback generator of `random_r`).
struct GlibcRand {
    s: [u32; 31],
    f: usize,
    r: usize,
}

impl GlibcRand {
    fn new(seed: u32) -> GlibcRand {
        let mut s = [0u32; 31];
        s[0] = if seed == 0 { 1 } else { seed };
        for i in 1..31 {
            let prev = s[i - 1] as i32 as i64;
            let (hi, lo) = (prev / 127773, prev % 127773);
            let mut word = 16807 * lo - 2836 * hi;
            if word < 0 {
                word += 2147483647;
            }
            s[i] = word as u32;
        }
        let mut g = GlibcRand { s, f: 3, r: 0 };
        for _ in 0..310 {
            g.next();
        }
        g
    }

    fn next(&mut self) -> i32 {
        self.s[self.f] = self.s[self.f].wrapping_add(self.s[self.r]);
        let out = (self.s[self.f] >> 1) & 0x7fff_ffff;
        self.f += 1;
        self.r += 1;
        if self.f >= 31 {
            self.f = 0;
        } else if self.r >= 31 {
            self.r = 0;
        }
        out as i32
    }
}

thread_local! {
    /// Redis seeds `rand()` once at startup with `time(NULL) ^ getpid()`.
    static RAND: RefCell<GlibcRand> = RefCell::new(GlibcRand::new({
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (t as u32) ^ std::process::id()
    }));
}

fn rand() -> i32 {
    RAND.with(|r| r.borrow_mut().next())
}

const RAND_MAX: i32 = 2147483647;

/// A canvas of pixels (colours 0..3), writes outside it ignored, reads outside it 0.
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, bg: u8) -> Canvas {
        let n = (width.max(0) as usize) * (height.max(0) as usize);
        Canvas {
            width,
            height,
            pixels: vec![bg; n],
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return;
        }
        self.pixels[(x + y * self.width) as usize] = color;
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return 0;
        }
        self.pixels[(x + y * self.width) as usize]
    }

    /// Bresenham, as `lwDrawLine`.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let dx = (x2 - x1).abs();
        let dy = (y2 - y1).abs();
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// `lwDrawSquare`: float parameters, double trigonometry, C's rounding (and Redis's
    /// 10-digit square root of 2).
    #[allow(clippy::approx_constant)]
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        let size = (size as f64 / 1.4142135623) as f32;
        let size = (size as f64).round() as f32;
        let mut k = (std::f64::consts::FRAC_PI_4 + angle as f64) as f32;
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = ((k as f64).sin() * size as f64 + x as f64).round() as i32;
            py[j] = ((k as f64).cos() * size as f64 + y as f64).round() as i32;
            k = (k as f64 + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// LOLWUT [VERSION version] [version-specific arguments]
pub fn lolwut(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut args = &argv[1..];
    let mut version = VERSION.to_string();
    if argv.len() >= 3 && argv[1].eq_ignore_ascii_case(b"version") {
        let v = match int(&argv[2]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        version = format!("{}.0.0", v as u32);
        args = &argv[3..];
    }
    let v = version.as_bytes();
    // "<major>.<9 or not>": 5.x and 4.9 draw version 5, 6.x and 5.9 version 6.
    let is = |major: u8, nine: bool| v[0] == major && v[1] == b'.' && (v[2] == b'9') == nine;
    let result = if is(b'5', false) || is(b'4', true) {
        lolwut5(args)
    } else if is(b'6', false) || is(b'5', true) {
        lolwut6(args)
    } else {
        Ok(format!("Redis ver. {VERSION}\n").into_bytes())
    };
    match result {
        Ok(text) => Reply::Verbatim(Bytes::from(text)),
        Err(e) => e,
    }
}

/// The optional numeric arguments, in order, with Redis's defaults.
fn numbers<const N: usize>(args: &[Bytes], mut out: [i64; N]) -> Result<[i64; N], Reply> {
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = int(a)?;
    }
    Ok(out)
}

/// LOLWUT 5: [columns] [squares-per-row] [squares-per-col]
fn lolwut5(args: &[Bytes]) -> Result<Vec<u8>, Reply> {
    let [cols, per_row, per_col] = numbers(args, [66, 8, 12])?;
    let cols = cols.clamp(1, 1000);
    let per_row = per_row.clamp(1, 200);
    let per_col = per_col.clamp(1, 200);
    let canvas = schotter(cols as i32, per_row as i32, per_col as i32);
    let mut text = render_braille(&canvas);
    text.extend_from_slice(b"\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    text.extend_from_slice(VERSION.as_bytes());
    text.push(b'\n');
    Ok(text)
}

fn schotter(console_cols: i32, per_row: i32, per_col: i32) -> Canvas {
    let canvas_width = console_cols * 2;
    let padding = if canvas_width > 4 { 2 } else { 0 };
    let side: f32 = (canvas_width - padding * 2) as f32 / per_row as f32;
    let canvas_height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(canvas_width, canvas_height, 0);
    let rand_max = RAND_MAX as f32;
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle: f32 = 0.0;
            if y > 1 {
                let mut r1 = rand() as f32 / rand_max / per_col as f32 * y as f32;
                let mut r2 = rand() as f32 / rand_max / per_col as f32 * y as f32;
                let mut r3 = rand() as f32 / rand_max / per_col as f32 * y as f32;
                if rand() % 2 != 0 {
                    r1 = -r1;
                }
                if rand() % 2 != 0 {
                    r2 = -r2;
                }
                if rand() % 2 != 0 {
                    r3 = -r3;
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    canvas
}

/// Each 2x4 block of pixels as one Braille character (U+2800 + dots).
fn render_braille(c: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    let mut y = 0;
    while y < c.height {
        let mut x = 0;
        while x < c.width {
            let dots = [
                (x, y, 0),
                (x, y + 1, 1),
                (x, y + 2, 2),
                (x + 1, y, 3),
                (x + 1, y + 1, 4),
                (x + 1, y + 2, 5),
                (x, y + 3, 6),
                (x + 1, y + 3, 7),
            ];
            let byte = dots
                .iter()
                .filter(|(px, py, _)| c.get(*px, *py) != 0)
                .fold(0u32, |b, (_, _, bit)| b | (1 << bit));
            let code = 0x2800 + byte;
            text.push(0xE0 | (code >> 12) as u8);
            text.push(0x80 | ((code >> 6) & 0x3F) as u8);
            text.push(0x80 | (code & 0x3F) as u8);
            x += 2;
        }
        if y != c.height - 1 {
            text.push(b'\n');
        }
        y += 4;
    }
    text
}

/// LOLWUT 6: [columns] [rows]
fn lolwut6(args: &[Bytes]) -> Result<Vec<u8>, Reply> {
    let [cols, rows] = numbers(args, [80, 20])?;
    let cols = cols.clamp(1, 1000) as i32;
    let rows = rows.clamp(1, 1000) as i32;
    let mut canvas = Canvas::new(cols, rows, 3);
    skyline(&mut canvas);
    let mut text = Vec::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let ce: &[u8] = match canvas.get(x, y) {
                1 => b"0;90;100m",
                2 => b"0;37;47m",
                3 => b"0;97;107m",
                _ => b"0;30;40m",
            };
            text.extend_from_slice(b"\x1b[");
            text.extend_from_slice(ce);
            text.extend_from_slice(b" \x1b[0m");
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text.extend_from_slice(
        b"\nDedicated to the 8 bit game developers of past and present.\n\
          Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
    );
    text.extend_from_slice(VERSION.as_bytes());
    text.push(b'\n');
    Ok(text)
}

struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

fn skyscraper(c: &mut Canvas, si: &Skyscraper) {
    let starty = c.height - 1;
    let endy = starty - si.height + 1;
    let mut y = starty;
    while y >= endy {
        for x in si.xoff..si.xoff + si.width {
            // The roof is four pixels less wide.
            if y == endy && (x <= si.xoff + 1 || x >= si.xoff + si.width - 2) {
                continue;
            }
            let mut color = si.color;
            if si.windows
                && x > si.xoff + 1
                && x < si.xoff + si.width - 2
                && y > endy + 1
                && y < starty - 1
            {
                let relx = x - (si.xoff + 1);
                let rely = y - (endy + 1);
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = (1 + rand() % 2) as u8;
                        if color != si.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = c.get(x - 1, y);
                    }
                }
            }
            c.set(x, y, color);
        }
        y -= 1;
    }
}

fn skyline(c: &mut Canvas) {
    let h = c.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < c.width {
            offset += rand() % 8;
            let width = 10 + rand() % 9;
            let height = if color == 2 {
                h / 2 + (rand() % h) / 2
            } else {
                h / 2 + (rand() % h) / 3
            };
            let si = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(c, &si);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < c.width {
        offset += rand() % 8;
        let mut width = 5 + rand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + (rand() % h) / 2;
        let si = Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        };
        skyscraper(c, &si);
        offset += width + 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_rand_sequence() {
        // glibc: srand(1); rand() x3.
        let mut g = GlibcRand::new(1);
        assert_eq!(
            [g.next(), g.next(), g.next()],
            [1804289383, 846930886, 1681692777]
        );
    }

    #[test]
    fn schotter_first_rows_are_fixed() {
        // The first two rows of squares use no randomness: the top of the default picture.
        let c = schotter(66, 8, 12);
        assert_eq!((c.width, c.height), (132, 196));
        let text = String::from_utf8(render_braille(&c)).unwrap();
        assert_eq!(text.lines().count(), 49);
        assert!(text.lines().all(|l| l.chars().count() == 66));
    }
}
