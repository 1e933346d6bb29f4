//! The calibration charts as SVG (plotters), so a person sees why a threshold was
//! chosen: pixel IoU and F1 against the threshold, the ROC and precision-recall curves
//! with the operating point, and the good and damaged photos' scores with the threshold.
//! The SVG is shown as an image, never inserted as markup.

use plotters::prelude::*;

use super::metrics::Curve;

pub const WIDTH: u32 = 480;
pub const HEIGHT: u32 = 300;

const GOOD: RGBColor = RGBColor(26, 127, 55);
const DAMAGED: RGBColor = RGBColor(198, 40, 40);
const THRESHOLD: RGBColor = RGBColor(31, 111, 235);
const F1: RGBColor = RGBColor(140, 90, 0);

fn err(e: impl std::fmt::Display) -> String {
    format!("the chart could not be drawn: {e}")
}

/// The range `values` span, widened a little so nothing sits on the frame.
fn padded(values: impl IntoIterator<Item = f32>) -> Option<(f32, f32)> {
    let (lo, hi) = values.into_iter().filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return None;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3 * hi.abs().max(1.0));
    Some((lo - pad, hi + pad))
}

/// Pixel IoU (and F1) against the threshold, with the threshold as a vertical line.
pub fn threshold_curves(iou: &Curve, f1: Option<&Curve>, threshold: f32) -> Result<String, String> {
    let xs = iou.thresholds.iter().copied().chain(f1.into_iter().flat_map(|c| c.thresholds.iter().copied())).chain([threshold]);
    let (x0, x1) = padded(xs).ok_or("no threshold to plot")?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Pixel overlap with the marked damage", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(x0..x1, 0f32..1.02f32)
            .map_err(err)?;
        chart.configure_mesh().x_desc("threshold (raw score)").y_desc("IoU / F1").light_line_style(WHITE.mix(0.0)).draw().map_err(err)?;
        let points = |c: &Curve| c.thresholds.iter().zip(&c.y).map(|(&t, &y)| (t, y as f32)).collect::<Vec<_>>();
        chart
            .draw_series(LineSeries::new(points(iou), DAMAGED.stroke_width(2)))
            .map_err(err)?
            .label("IoU")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], DAMAGED.stroke_width(2)));
        if let Some(f1) = f1 {
            chart
                .draw_series(LineSeries::new(points(f1), F1.stroke_width(1)))
                .map_err(err)?
                .label("F1")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], F1.stroke_width(1)));
        }
        threshold_line(&mut chart, threshold, 1.02)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.3)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn threshold_line<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf32, plotters::coord::types::RangedCoordf32>>,
    threshold: f32,
    top: f32,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    chart
        .draw_series(std::iter::once(PathElement::new([(threshold, 0.0), (threshold, top)], THRESHOLD.stroke_width(2))))
        .map_err(err)?
        .label("threshold")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], THRESHOLD.stroke_width(2)));
    Ok(())
}

/// A curve on the unit square with the operating point at the threshold marked.
fn unit_curve(title: &str, x_desc: &str, y_desc: &str, curve: &Curve, point: (f64, f64), diagonal: bool) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..1.02f64, 0f64..1.02f64)
            .map_err(err)?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).light_line_style(WHITE.mix(0.0)).draw().map_err(err)?;
        if diagonal {
            chart.draw_series(std::iter::once(PathElement::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.25)))).map_err(err)?;
        }
        chart.draw_series(LineSeries::new(curve.x.iter().copied().zip(curve.y.iter().copied()), DAMAGED.stroke_width(2))).map_err(err)?;
        chart
            .draw_series(std::iter::once(Circle::new(point, 6, THRESHOLD.filled())))
            .map_err(err)?
            .label("at the threshold")
            .legend(|(x, y)| Circle::new((x + 8, y), 5, THRESHOLD.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Image ROC curve; `point` is (share of good flagged, share of damaged flagged).
pub fn roc(curve: &Curve, point: (f64, f64)) -> Result<String, String> {
    unit_curve("ROC: damaged caught against good flagged", "good photos flagged", "damaged photos caught", curve, point, true)
}

/// Image precision-recall curve; `point` is (recall, precision) at the threshold.
pub fn pr(curve: &Curve, point: (f64, f64)) -> Result<String, String> {
    unit_curve("Precision against recall", "recall (damaged caught)", "precision (flags that are damage)", curve, point, false)
}

/// How many of `scores` fall into each of `bins` equal bins over [lo, hi).
fn bin_counts(scores: &[f32], lo: f32, hi: f32, bins: usize) -> Vec<u32> {
    let mut counts = vec![0u32; bins];
    let width = (hi - lo) / bins as f32;
    for &s in scores.iter().filter(|s| s.is_finite()) {
        let i = (((s - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// Histograms of the good and the damaged photos' image scores, with the threshold.
pub fn score_histogram(good: &[f32], damaged: &[f32], threshold: f32) -> Result<String, String> {
    const BINS: usize = 20;
    let (lo, hi) = padded(good.iter().chain(damaged).copied().chain([threshold])).ok_or("no score to plot")?;
    let (good_counts, damaged_counts) = (bin_counts(good, lo, hi, BINS), bin_counts(damaged, lo, hi, BINS));
    // Headroom above the tallest bar keeps the legend (upper right) off the bars.
    let top = good_counts.iter().chain(&damaged_counts).copied().max().unwrap_or(1).max(1) as f32 * 1.6;
    let width = (hi - lo) / BINS as f32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Scores of good and damaged photos", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0f32..top)
            .map_err(err)?;
        chart.configure_mesh().x_desc("image score (raw)").y_desc("photos").light_line_style(WHITE.mix(0.0)).draw().map_err(err)?;
        // Good bars fill the left half of each bin and damaged the right, so neither hides the other.
        for (counts, colour, offset, label) in [(&good_counts, GOOD, 0.0, "good"), (&damaged_counts, DAMAGED, 0.5, "damaged")] {
            chart
                .draw_series(counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| {
                    let x = lo + (i as f32 + offset) * width;
                    Rectangle::new([(x, 0.0), (x + width * 0.5, n as f32)], colour.mix(0.75).filled())
                }))
                .map_err(err)?
                .label(format!("{label} ({})", if label == "good" { good.len() } else { damaged.len() }))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        threshold_line(&mut chart, threshold, top)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.3)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_the_threshold_drawn() {
        let iou = Curve { x: vec![0.1, 0.5, 0.9], y: vec![0.2, 0.7, 0.1], thresholds: vec![0.1, 0.5, 0.9] };
        let svg = threshold_curves(&iou, Some(&iou), 0.5).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("threshold") && svg.contains("IoU"));
        // The threshold colour appears as a stroke.
        assert!(svg.contains("#1F6FEB"), "{svg}");

        let roc_curve = Curve { x: vec![0.0, 0.0, 1.0], y: vec![0.0, 1.0, 1.0], thresholds: vec![2.0, 1.0, 0.0] };
        assert!(roc(&roc_curve, (0.0, 1.0)).unwrap().contains("<circle"));
        assert!(pr(&roc_curve, (1.0, 1.0)).unwrap().contains("<circle"));

        let hist = score_histogram(&[1.0, 1.2, 1.1], &[3.0, 4.0], 2.0).unwrap();
        assert!(hist.contains("good (3)") && hist.contains("damaged (2)"));
        assert!(hist.matches("<rect").count() >= 4);
        assert!(score_histogram(&[], &[], f32::NAN).is_err());
    }

    #[test]
    fn bins_hold_every_score() {
        let counts = bin_counts(&[0.0, 0.5, 0.99, 1.0, -3.0, f32::NAN], 0.0, 1.0, 4);
        assert_eq!(counts, vec![2, 0, 1, 2]);
    }
}
