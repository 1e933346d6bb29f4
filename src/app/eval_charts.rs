//! The evaluation report's curves, drawn with plotters as SVG and shown through an
//! `<img>` from a Blob URL: the chart is an image, never markup put into the page.

use plotters::prelude::*;

use super::files::blob_of_type;
use crate::eval::report::PlotLine;

const SIZE: (u32, u32) = (420, 340);

/// The first line is "overall" (drawn thicker), then one per defect category.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 111, 235),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A reference drawn under the curves.
pub enum Guide {
    /// The chance line of a ROC curve.
    Diagonal,
    /// A vertical line at this x, named (where AUPRO stops integrating).
    Limit(f64, &'static str),
    None,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    pub guide: Guide,
    pub legend_at: SeriesLabelPosition,
}

/// The chart as an SVG document, axes from 0 to 1.
pub fn svg(chart: &Chart, lines: &[PlotLine]) -> Result<String, String> {
    let err = |e: DrawingAreaErrorKind<_>| format!("the chart \"{}\" cannot be drawn: {e}", chart.title);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut plot = ChartBuilder::on(&root)
            .caption(chart.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(err)?;
        plot.configure_mesh()
            .x_desc(chart.x)
            .y_desc(chart.y)
            .x_labels(6)
            .y_labels(6)
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(err)?;
        match chart.guide {
            Guide::Diagonal => {
                plot.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.35).stroke_width(1))).map_err(err)?;
            }
            Guide::Limit(x, name) => {
                plot.draw_series(LineSeries::new([(x, 0.0), (x, 1.02)], BLACK.mix(0.35).stroke_width(1))).map_err(err)?;
                plot.draw_series([Text::new(name, (x + 0.01, 0.06), ("sans-serif", 12).into_font().color(&BLACK.mix(0.6)))])
                    .map_err(err)?;
            }
            Guide::None => {}
        }
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let width = if i == 0 { 3 } else { 2 };
            plot.draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(width)))
                .map_err(err)?
                .label(line.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        }
        if lines.len() > 1 {
            plot.configure_series_labels()
                .position(chart.legend_at.clone())
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// A Blob URL of an SVG document, for an `<img>`; the caller revokes it.
pub fn svg_url(svg: &str) -> Result<String, String> {
    let blob = blob_of_type(svg.as_bytes(), "image/svg+xml")?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))
}
