//! The qualitative figure (the paper's Fig. 2), `figures/predictions.{png,svg}`: for an
//! image-to-image experiment, k test images as rows (chosen with the runs' seed), then the
//! ground truth and each method's predicted mask drawn over the image. It reads each method's
//! checkpoint of the first seed and the experiment's data, so it is drawn only when the report
//! is given the data folder.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use image::codecs::png::PngEncoder;
use image::ImageEncoder;
use mtcool_train::predict::Gallery;
use mtcool_train::results::write_atomic;
use ndarray::Array3;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{text_err, Drawn, Figure, FAMILY};
use crate::error::{ReportError, Result};
use crate::load::ExperimentResults;
use crate::ReportContext;

/// Test images shown.
pub const ROWS: usize = 4;
/// Width of one picture, in pixels.
const CELL: usize = 160;
const GAP: usize = 6;
const HEADER: usize = 28;

/// Each method's (title, checkpoint) of the first seed every method has, in table order.
pub fn checkpoints(results: &ExperimentResults, context: &ReportContext) -> Vec<(String, PathBuf)> {
    let order = mtcool_train::table::method_order(&results.summary, &context.order);
    let seed = order
        .iter()
        .filter_map(|m| results.runs.get(*m))
        .flat_map(|runs| {
            runs.iter()
                .filter(|r| r.checkpoint.is_some())
                .map(|r| r.seed)
        })
        .min();
    let Some(seed) = seed else {
        return Vec::new();
    };
    order
        .iter()
        .filter_map(|method| {
            let run = results.runs.get(*method)?.iter().find(|r| r.seed == seed)?;
            let file = run.checkpoint.as_ref()?;
            let path = results.dir.join("runs").join(file);
            path.is_file().then(|| (method.to_string(), path))
        })
        .collect()
}

/// The figure of one gallery.
pub struct PredictionsFigure {
    gallery: Gallery,
    title: String,
    heights: Vec<usize>,
}

impl PredictionsFigure {
    /// The figure of `gallery`.
    pub fn new(gallery: Gallery) -> Self {
        let heights = gallery
            .rows
            .iter()
            .map(|row| row.iter().map(|p| p.dim().1).max().unwrap_or(CELL))
            .collect();
        Self {
            title: "Predictions on test images (first seed)".into(),
            gallery,
            heights,
        }
    }

    fn width(&self) -> usize {
        self.gallery.columns.len() * (CELL + GAP) + GAP
    }

    /// Top-left corner of the picture in `row`, `column` (below the title area).
    fn origin(&self, row: usize, column: usize) -> (usize, usize) {
        let y = HEADER + self.heights[..row].iter().map(|h| h + GAP).sum::<usize>();
        (GAP + column * (CELL + GAP), y)
    }

    /// The SVG: the title and column names as text, the pictures as embedded PNGs.
    fn svg(&self) -> std::result::Result<String, String> {
        let (w, h) = self.size();
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"24\" font-family=\"sans-serif\" font-size=\"20\" text-anchor=\"middle\">{}</text>\n",
            w / 2,
            self.title
        );
        let top = 40;
        for (c, name) in self.gallery.columns.iter().enumerate() {
            let (x, _) = self.origin(0, c);
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n",
                x + CELL / 2,
                top + 18,
                escape(name)
            ));
        }
        for (r, row) in self.gallery.rows.iter().enumerate() {
            for (c, picture) in row.iter().enumerate() {
                let (x, y) = self.origin(r, c);
                let (_, ph, pw) = picture.dim();
                let data = base64::engine::general_purpose::STANDARD.encode(png(picture)?);
                svg.push_str(&format!(
                    "<image x=\"{x}\" y=\"{}\" width=\"{pw}\" height=\"{ph}\" href=\"data:image/png;base64,{data}\"/>\n",
                    y + top
                ));
            }
        }
        svg.push_str("</svg>\n");
        Ok(svg)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Interleaved RGB bytes of a `(3, H, W)` picture.
fn rgb_bytes(picture: &Array3<u8>) -> Vec<u8> {
    let (_, h, w) = picture.dim();
    let mut bytes = Vec::with_capacity(3 * h * w);
    for y in 0..h {
        for x in 0..w {
            bytes.extend((0..3).map(|c| picture[[c, y, x]]));
        }
    }
    bytes
}

fn png(picture: &Array3<u8>) -> std::result::Result<Vec<u8>, String> {
    let (_, h, w) = picture.dim();
    let mut out = Vec::new();
    PngEncoder::new(Cursor::new(&mut out))
        .write_image(
            &rgb_bytes(picture),
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(text_err)?;
    Ok(out)
}

impl Figure for PredictionsFigure {
    fn size(&self) -> (u32, u32) {
        let rows: usize = self.heights.iter().map(|h| h + GAP).sum();
        (self.width() as u32, (40 + HEADER + rows + GAP) as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let style = (FAMILY, 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (c, name) in self.gallery.columns.iter().enumerate() {
            let (x, _) = self.origin(0, c);
            area.draw(&Text::new(
                name.clone(),
                ((x + CELL / 2) as i32, (HEADER / 2) as i32),
                style.clone(),
            ))
            .map_err(text_err)?;
        }
        for (r, row) in self.gallery.rows.iter().enumerate() {
            for (c, picture) in row.iter().enumerate() {
                let (x, y) = self.origin(r, c);
                let (_, ph, pw) = picture.dim();
                let element: BitMapElement<'_, _> = BitMapElement::with_owned_buffer(
                    (x as i32, y as i32),
                    (pw as u32, ph as u32),
                    rgb_bytes(picture),
                )
                .ok_or_else(|| "picture buffer of the wrong size".to_string())?;
                area.draw(&element).map_err(text_err)?;
            }
        }
        Ok(())
    }
}

/// Draws `figures/predictions.{png,svg}` for the runs' checkpoints with the data in
/// `data_dir`. `Ok(None)` when no run kept a checkpoint.
pub fn write(
    results: &ExperimentResults,
    context: &ReportContext,
    data_dir: &Path,
    dir: &Path,
) -> Result<Option<[PathBuf; 2]>> {
    let runs = checkpoints(results, context);
    if runs.is_empty() {
        return Ok(None);
    }
    let png_path = dir.join("predictions.png");
    let gallery =
        mtcool_train::predict::gallery(&runs, data_dir, ROWS, CELL, &candle_core::Device::Cpu)
            .map_err(|e| ReportError::file(&png_path, e.to_string()))?;
    let figure = PredictionsFigure::new(gallery);
    let png_bytes = super::render_png(&figure).map_err(|e| ReportError::file(&png_path, e))?;
    std::fs::create_dir_all(dir).map_err(|e| ReportError::file(dir, e.to_string()))?;
    write_atomic(&png_path, &png_bytes)?;
    let svg_path = dir.join("predictions.svg");
    let svg = figure.svg().map_err(|e| ReportError::file(&svg_path, e))?;
    write_atomic(&svg_path, svg.as_bytes())?;
    Ok(Some([png_path, svg_path]))
}
