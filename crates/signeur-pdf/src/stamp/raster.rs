//! Pixels: decoding PNGs with bounds (the signer's drawn signature, the rendered last page) and
//! finding a blank area of a rendered page.

use std::io::Cursor;

use png::{ColorType, Limits, Transformations};

/// Most bytes a PNG may decode to.
const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;
/// Longest side of an accepted signature image, in pixels.
const MAX_SIGNATURE_SIDE: u32 = 10_000;
/// Longest side a signature image is reduced to before it is embedded.
const EMBED_MAX_WIDTH: u32 = 800;
const EMBED_MAX_HEIGHT: u32 = 300;

/// An RGBA image, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes a PNG to RGBA8, or `None` when it is not a PNG, is damaged, or is too large.
pub(super) fn decode_png(bytes: &[u8]) -> Option<Rgba> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let (width, height) = reader.info().size();
    if width == 0 || height == 0 || width > MAX_SIGNATURE_SIDE || height > MAX_SIGNATURE_SIDE {
        return None;
    }
    let size = reader.output_buffer_size()?;
    if size > MAX_DECODED_BYTES {
        return None;
    }
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).ok()?;
    let channels = match info.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        // EXPAND turns palettes into RGB(A); anything else is unexpected.
        ColorType::Indexed => return None,
    };
    let line = info.line_size;
    let (w, h) = (info.width as usize, info.height as usize);
    if line < w * channels || buf.len() < line * h {
        return None;
    }
    let mut pixels = Vec::with_capacity(w * h * 4);
    for row in buf.chunks(line).take(h) {
        for px in row[..w * channels].chunks_exact(channels) {
            let rgba = match channels {
                1 => [px[0], px[0], px[0], 255],
                2 => [px[0], px[0], px[0], px[1]],
                3 => [px[0], px[1], px[2], 255],
                _ => [px[0], px[1], px[2], px[3]],
            };
            pixels.extend_from_slice(&rgba);
        }
    }
    Some(Rgba {
        width: info.width,
        height: info.height,
        pixels,
    })
}

/// The drawn signature ready to embed: decoded, cropped to its ink (so a small drawing on a
/// large canvas is not lost in white space) and reduced to at most 800 × 300 pixels.
pub(super) fn signature_image(bytes: &[u8]) -> Option<Rgba> {
    let image = decode_png(bytes)?;
    let image = crop_to_ink(&image)?;
    Some(reduce(&image, EMBED_MAX_WIDTH, EMBED_MAX_HEIGHT))
}

/// Whether a pixel shows something: not transparent and not near-white.
fn is_ink(px: &[u8]) -> bool {
    px[3] > 24 && px[..3].iter().any(|&c| c < 235)
}

/// The image cut to the bounding box of its ink, with a small margin; `None` if it is blank.
fn crop_to_ink(image: &Rgba) -> Option<Rgba> {
    let (w, h) = (image.width as usize, image.height as usize);
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let at = (y * w + x) * 4;
            if is_ink(&image.pixels[at..at + 4]) {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let margin = (w.max(h) / 50).max(1);
    let (x0, y0) = (x0.saturating_sub(margin), y0.saturating_sub(margin));
    let (x1, y1) = ((x1 + margin).min(w), (y1 + margin).min(h));
    let mut pixels = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        pixels.extend_from_slice(&image.pixels[(y * w + x0) * 4..(y * w + x1) * 4]);
    }
    Some(Rgba {
        width: u32::try_from(x1 - x0).ok()?,
        height: u32::try_from(y1 - y0).ok()?,
        pixels,
    })
}

/// The image scaled down (area average) to fit `max_w` × `max_h`; unchanged if it fits.
fn reduce(image: &Rgba, max_w: u32, max_h: u32) -> Rgba {
    let scale = (max_w as f32 / image.width as f32)
        .min(max_h as f32 / image.height as f32)
        .min(1.0);
    if scale >= 1.0 {
        return image.clone();
    }
    let nw = ((image.width as f32 * scale).round() as u32).max(1);
    let nh = ((image.height as f32 * scale).round() as u32).max(1);
    let (w, h) = (image.width as usize, image.height as usize);
    let mut pixels = Vec::with_capacity(nw as usize * nh as usize * 4);
    for ny in 0..nh as usize {
        let sy0 = ny * h / nh as usize;
        let sy1 = ((ny + 1) * h / nh as usize).max(sy0 + 1).min(h);
        for nx in 0..nw as usize {
            let sx0 = nx * w / nw as usize;
            let sx1 = ((nx + 1) * w / nw as usize).max(sx0 + 1).min(w);
            // Premultiplied average, so transparent pixels do not darken the edges.
            let mut sum = [0u64; 4];
            for sy in sy0..sy1 {
                for sx in sx0..sx1 {
                    let at = (sy * w + sx) * 4;
                    let px = &image.pixels[at..at + 4];
                    let a = u64::from(px[3]);
                    for (total, channel) in sum.iter_mut().zip(&px[..3]) {
                        *total += u64::from(*channel) * a;
                    }
                    sum[3] += a;
                }
            }
            let n = ((sy1 - sy0) * (sx1 - sx0)) as u64;
            let alpha = sum[3] / n.max(1);
            for s in &sum[..3] {
                pixels.push(s.checked_div(sum[3]).map_or(255, |v| v.min(255) as u8));
            }
            pixels.push(alpha.min(255) as u8);
        }
    }
    Rgba {
        width: nw,
        height: nh,
        pixels,
    }
}

/// Which pixels of a rendered page carry content, with a summed-area table for fast
/// rectangle queries.
pub(super) struct InkMap {
    width: usize,
    height: usize,
    /// `(width + 1) × (height + 1)` prefix sums of ink pixels.
    sums: Vec<u32>,
    /// Pixels per point.
    scale: f32,
}

impl InkMap {
    /// From a rendered page (a PNG on white) `page_width` points wide.
    pub fn from_png(png: &[u8], page_width: f32) -> Option<InkMap> {
        let image = decode_png(png)?;
        let (w, h) = (image.width as usize, image.height as usize);
        let mut sums = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0u32;
            for x in 0..w {
                let at = (y * w + x) * 4;
                let px = &image.pixels[at..at + 4];
                // Light tints (backgrounds, watermarks) count as content too.
                if px[..3].iter().any(|&c| c < 245) {
                    row += 1;
                }
                sums[(y + 1) * (w + 1) + x + 1] = sums[y * (w + 1) + x + 1] + row;
            }
        }
        Some(InkMap {
            width: w,
            height: h,
            sums,
            scale: w as f32 / page_width,
        })
    }

    /// Marks a rectangle (points) as occupied.
    pub fn occupy(&mut self, x: f32, y: f32, w: f32, h: f32) {
        let (x0, y0, x1, y1) = self.pixels(x, y, w, h);
        // Rebuild the table with the rectangle counted as full ink.
        let stride = self.width + 1;
        let mut ink = vec![false; self.width * self.height];
        for yy in 0..self.height {
            for xx in 0..self.width {
                let s = |a: usize, b: usize| self.sums[a * stride + b];
                let v = s(yy + 1, xx + 1) + s(yy, xx) - s(yy, xx + 1) - s(yy + 1, xx);
                ink[yy * self.width + xx] = v > 0 || (xx >= x0 && xx < x1 && yy >= y0 && yy < y1);
            }
        }
        for yy in 0..self.height {
            let mut row = 0;
            for xx in 0..self.width {
                row += u32::from(ink[yy * self.width + xx]);
                self.sums[(yy + 1) * stride + xx + 1] = self.sums[yy * stride + xx + 1] + row;
            }
        }
    }

    /// The pixel rectangle `[x0, x1) × [y0, y1)` covering a rectangle in points, clamped.
    fn pixels(&self, x: f32, y: f32, w: f32, h: f32) -> (usize, usize, usize, usize) {
        let floor = |v: f32, max: usize| ((v * self.scale).floor().max(0.0) as usize).min(max);
        let ceil = |v: f32, max: usize| ((v * self.scale).ceil().max(0.0) as usize).min(max);
        let (x0, y0) = (floor(x, self.width), floor(y, self.height));
        let (x1, y1) = (ceil(x + w, self.width), ceil(y + h, self.height));
        (x0, y0, x1.max(x0), y1.max(y0))
    }

    /// Whether a rectangle in points (inside the page) shows no content.
    pub fn blank(&self, x: f32, y: f32, w: f32, h: f32) -> bool {
        let (x0, y0, x1, y1) = self.pixels(x, y, w, h);
        let stride = self.width + 1;
        let s = |a: usize, b: usize| self.sums[a * stride + b];
        s(y1, x1) + s(y0, x0) - s(y0, x1) - s(y1, x0) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, color: ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(data).expect("data");
        writer.finish().expect("finish");
        out
    }

    #[test]
    fn garbage_and_blank_images_are_none() {
        assert_eq!(decode_png(b"not a png"), None);
        assert_eq!(decode_png(&[]), None);
        let white = png(4, 4, ColorType::Grayscale, &[255; 16]);
        assert!(decode_png(&white).is_some());
        assert_eq!(signature_image(&white), None, "nothing drawn");
        let mut cut = png(4, 4, ColorType::Grayscale, &[0; 16]);
        cut.truncate(cut.len() / 2);
        assert_eq!(signature_image(&cut), None);
    }

    #[test]
    fn signatures_are_cropped_and_reduced() {
        // A 2000 × 100 grey canvas with one black stroke in its middle.
        let (w, h) = (2000usize, 100usize);
        let mut data = vec![255u8; w * h];
        for x in 500..1500 {
            data[50 * w + x] = 0;
        }
        let image = signature_image(&png(w as u32, h as u32, ColorType::Grayscale, &data))
            .expect("decoded");
        assert!(image.width <= EMBED_MAX_WIDTH && image.height <= EMBED_MAX_HEIGHT);
        assert!(image.width > 10 * image.height, "cropped to the stroke");
        assert_eq!(
            image.pixels.len(),
            image.width as usize * image.height as usize * 4
        );
    }

    #[test]
    fn ink_map_finds_blank_rectangles() {
        // 100 × 100 points at 1 pixel per point: ink in the top half only.
        let mut data = vec![255u8; 100 * 100 * 3];
        for px in data[..50 * 100 * 3].iter_mut() {
            *px = 0;
        }
        let mut map = InkMap::from_png(&png(100, 100, ColorType::Rgb, &data), 100.0).expect("map");
        assert!(map.blank(10.0, 60.0, 80.0, 30.0));
        assert!(!map.blank(10.0, 40.0, 80.0, 30.0));
        map.occupy(0.0, 70.0, 20.0, 10.0);
        assert!(!map.blank(10.0, 60.0, 80.0, 30.0));
        assert!(map.blank(30.0, 60.0, 60.0, 30.0));
    }
}
