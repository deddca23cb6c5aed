//! Charts as inline SVG, rendered on the server.
//!
//! Why not a plotting crate: `plotters`' SVG backend silently drops every text element (axis
//! labels, legends) unless a font engine and a font file are compiled in, and it cannot attach
//! the `<title>`/`role="img"`/`aria-label` a screen reader needs. These five small chart shapes,
//! styled by `app.css` through classes, are less code than that glue. Every chart carries a text
//! alternative; pages also show the numbers in a table.

use std::fmt::Write;

/// Escapes text for SVG/XML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn open(out: &mut String, width: f64, height: f64, label: &str) {
    let label = escape(label);
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>"#
    );
}

/// A "nice" axis for values up to `max`: a step of 1, 2 or 5 times a power of ten, and the
/// smallest multiple of it at least `max`, with at most [`MAX_TICKS`] steps. Returns
/// `(axis maximum, step)`.
fn nice_axis(max: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 0.25);
    }
    let rough = max / MAX_TICKS as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| max / s <= MAX_TICKS as f64 + 1e-9)
        .unwrap_or(10.0 * magnitude);
    ((max / step - 1e-9).ceil().max(1.0) * step, step)
}

/// Most tick steps on a value axis.
const MAX_TICKS: usize = 5;

/// More x labels than this are written slanted, so every one can be shown.
const UPRIGHT_LABELS: usize = 12;

/// A named series of values, one per x label.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS class (`s-won`, `s-lost`, `s-open`, `s-score`, …) that colours it.
    pub class: &'static str,
    /// Values (NaN for a gap).
    pub values: Vec<f64>,
}

fn legend(out: &mut String, series: &[&Series], y: f64) {
    let mut x = LEFT;
    for s in series {
        let _ = write!(
            out,
            r#"<rect class="{}" x="{x}" y="{}" width="10" height="10"/><text class="legend" x="{}" y="{}">{}</text>"#,
            s.class,
            y - 9.0,
            x + 14.0,
            y,
            escape(&s.label)
        );
        x += 24.0 + 7.0 * s.label.chars().count() as f64;
    }
}

fn y_axis(out: &mut String, (max, step): (f64, f64), format: &dyn Fn(f64) -> String, plot_h: f64) {
    let ticks = (max / step).round() as usize;
    for i in 0..=ticks {
        let v = step * i as f64;
        let y = TOP + plot_h - plot_h * v / max;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&format(v))
        );
    }
}

/// Extra height below the plot that `labels` need: slanted labels take the room of their
/// longest one.
fn x_label_room(labels: &[String]) -> f64 {
    if labels.len() <= UPRIGHT_LABELS {
        return 0.0;
    }
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    // 11 px text at 45°: about 4.5 px of height per character, less the upright label's row.
    (longest * 4.5 - 12.0).max(0.0)
}

fn x_labels(out: &mut String, labels: &[String], step: f64, plot_h: f64) {
    // Every label is written: upright while they fit, slanted beyond.
    let slanted = labels.len() > UPRIGHT_LABELS;
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + step * (i as f64 + 0.5);
        let y = TOP + plot_h + 16.0;
        if slanted {
            let _ = write!(
                out,
                r#"<text class="tick" x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-45 {x:.1} {y:.1})">{}</text>"#,
                escape(label)
            );
        } else {
            let _ = write!(
                out,
                r#"<text class="tick" x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#,
                escape(label)
            );
        }
    }
}

/// Grouped bars per x label (`bars`), with optional lines over them on a 0–1 right axis
/// (`rates`, e.g. the win rate). `format` writes the left axis values.
pub fn bars_and_rates(
    label: &str,
    x: &[String],
    bars: &[Series],
    rates: &[Series],
    format: &dyn Fn(f64) -> String,
    rate_format: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::new();
    let room = x_label_room(x);
    open(&mut out, W, H + 20.0 + room, label);
    let plot_h = H - TOP - BOTTOM;
    let plot_w = W - LEFT - RIGHT - if rates.is_empty() { 0.0 } else { 40.0 };
    let axis = nice_axis(
        bars.iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let max = axis.0;
    y_axis(&mut out, axis, format, plot_h);
    let step = plot_w / x.len().max(1) as f64;
    let bar_w = (step * 0.8) / bars.len().max(1) as f64;
    for (k, s) in bars.iter().enumerate() {
        for (i, v) in s.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let h = plot_h * (v / max).clamp(0.0, 1.0);
            let bx = LEFT + step * i as f64 + step * 0.1 + bar_w * k as f64;
            let _ = write!(
                out,
                r#"<rect class="{}" x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{} · {}: {}</title></rect>"#,
                s.class,
                TOP + plot_h - h,
                (bar_w - 1.0).max(1.0),
                escape(x.get(i).map_or("", String::as_str)),
                escape(&s.label),
                escape(&format(*v))
            );
        }
    }
    for s in rates {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + step * (i as f64 + 0.5),
                    TOP + plot_h - plot_h * v.clamp(0.0, 1.0)
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line {}" points="{}"/>"#,
            s.class,
            points.join(" ")
        );
        for i in 0..=2 {
            let v = f64::from(i) / 2.0;
            let _ = write!(
                out,
                r#"<text class="tick" x="{:.1}" y="{:.1}">{}</text>"#,
                LEFT + plot_w + 6.0,
                TOP + plot_h - plot_h * v + 4.0,
                escape(&rate_format(v))
            );
        }
    }
    x_labels(&mut out, x, step, plot_h);
    let all: Vec<&Series> = bars.iter().chain(rates).collect();
    legend(&mut out, &all, H + 12.0 + room);
    out.push_str("</svg>");
    out
}

/// One line over x labels, on a fixed `0..=y_max` axis (score history: 0–100).
pub fn line(
    label: &str,
    x: &[String],
    series: &Series,
    y_max: f64,
    format: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::new();
    open(&mut out, W, H + x_label_room(x), label);
    let plot_h = H - TOP - BOTTOM;
    let plot_w = W - LEFT - RIGHT;
    let y_max = nice_axis(y_max);
    y_axis(&mut out, y_max, format, plot_h);
    let y_max = y_max.0;
    let step = plot_w / x.len().max(1) as f64;
    let mut points = String::new();
    for (i, v) in series.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        let (px, py) = (
            LEFT + step * (i as f64 + 0.5),
            TOP + plot_h - plot_h * (v / y_max).clamp(0.0, 1.0),
        );
        let _ = write!(points, "{px:.1},{py:.1} ");
        let _ = write!(
            out,
            r#"<circle class="dot {}" cx="{px:.1}" cy="{py:.1}" r="3"><title>{}: {}</title></circle>"#,
            series.class,
            escape(x.get(i).map_or("", String::as_str)),
            escape(&format(*v))
        );
    }
    let _ = write!(
        out,
        r#"<polyline class="line {}" points="{}"/>"#,
        series.class,
        points.trim_end()
    );
    x_labels(&mut out, x, step, plot_h);
    out.push_str("</svg>");
    out
}

/// One bar of a diverging chart: positive values raise (right), negative lower (left).
#[derive(Debug, Clone)]
pub struct Diverging {
    /// Row label.
    pub label: String,
    /// Signed value.
    pub value: f64,
    /// Text shown at the end of the bar.
    pub value_text: String,
}

/// Horizontal bars around a centre line: what raises to the right, what lowers to the left,
/// scaled to the largest bar.
pub fn diverging(label: &str, rows: &[Diverging], raises: &str, lowers: &str) -> String {
    let max = rows.iter().map(|r| r.value.abs()).fold(0.0, f64::max);
    diverging_on_scale(label, rows, raises, lowers, max)
}

/// [`diverging`] with bars drawn to a scale where `scale` fills the half width, so several
/// charts side by side compare (the factor effects of a model share one scale).
pub fn diverging_on_scale(label: &str, rows: &[Diverging], raises: &str, lowers: &str, scale: f64) -> String {
    let row_h = 26.0;
    let height = TOP + 24.0 + row_h * rows.len().max(1) as f64 + 8.0;
    // Room for the longest label (11 px text: about 6.5 px a character), within bounds that
    // leave the bars their space.
    let longest = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0) as f64;
    let label_w = (longest * 6.5 + 12.0).clamp(120.0, 300.0);
    let centre = label_w + (W - label_w - RIGHT) / 2.0;
    let half = (W - label_w - RIGHT) / 2.0 - 60.0;
    let max = if scale.is_finite() { scale.max(1e-9) } else { 1e-9 };
    let mut out = String::new();
    open(&mut out, W, height, label);
    let _ = write!(
        out,
        r#"<text class="legend lowers-text" x="{:.1}" y="{TOP}" text-anchor="end">◀ {}</text><text class="legend raises-text" x="{:.1}" y="{TOP}">{} ▶</text>"#,
        centre - 6.0,
        escape(lowers),
        centre + 6.0,
        escape(raises)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + 16.0 + row_h * i as f64;
        let w = half * (r.value.abs() / max).min(1.0);
        let (x, class, anchor, tx) = if r.value >= 0.0 {
            (centre, "raises", "start", centre + w + 4.0)
        } else {
            (centre - w, "lowers", "end", centre - w - 4.0)
        };
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="{class}" x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {}</title></rect><text class="tick" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            label_w - 8.0,
            y + 15.0,
            escape(&r.label),
            y + 3.0,
            w.max(1.0),
            row_h - 8.0,
            escape(&r.label),
            escape(&r.value_text),
            y + 15.0,
            escape(&r.value_text)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{centre:.1}" x2="{centre:.1}" y1="{}" y2="{:.1}"/>"#,
        TOP + 10.0,
        height - 4.0
    );
    out.push_str("</svg>");
    out
}

/// A named curve on the unit square.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend text.
    pub name: String,
    /// CSS class that colours it.
    pub class: &'static str,
    /// `(x, y)` points in 0–1.
    pub points: Vec<(f64, f64)>,
}

/// Points on the unit square with the diagonal drawn for reference: the ROC curve (false vs
/// true positive rate) and the reliability diagram (predicted vs observed win rate). Tick values
/// are written by `tick_format` (the reader's decimal separator).
pub fn unit_square(
    label: &str,
    x_title: &str,
    y_title: &str,
    series: &[Curve],
    markers: bool,
    tick_format: &dyn Fn(f64) -> String,
) -> String {
    let size = 300.0;
    let (left, top, plot) = (48.0, 12.0, 230.0);
    let mut out = String::new();
    open(&mut out, size + 40.0, size + 20.0, label);
    let px = |v: f64| left + plot * v.clamp(0.0, 1.0);
    let py = |v: f64| top + plot - plot * v.clamp(0.0, 1.0);
    for i in 0..=4 {
        let v = f64::from(i) / 4.0;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{tick}</text><text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{tick}</text>"#,
            left + plot,
            py(v),
            py(v),
            left - 4.0,
            py(v) + 4.0,
            px(v),
            top + plot + 14.0,
            tick = escape(&tick_format(v))
        );
    }
    let _ = write!(
        out,
        r#"<line class="diagonal" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    for Curve { name, class, points } in series {
        let path: Vec<String> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line {class}" points="{}"/>"#,
            path.join(" ")
        );
        if markers {
            for (x, y) in points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
                let _ = write!(
                    out,
                    r#"<circle class="dot {class}" cx="{:.1}" cy="{:.1}" r="3.5"><title>{}: {x:.2} → {y:.2}</title></circle>"#,
                    px(*x),
                    py(*y),
                    escape(name)
                );
            }
        }
    }
    let _ = write!(
        out,
        r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis-title" transform="translate(12 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        left + plot / 2.0,
        top + plot + 32.0,
        escape(x_title),
        top + plot / 2.0,
        escape(y_title)
    );
    let mut y = top + plot + 50.0;
    for Curve { name, class, .. } in series {
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{left}" y="{:.1}" width="10" height="10"/><text class="legend" x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 9.0,
            left + 14.0,
            escape(name)
        );
        y += 14.0;
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(svg: &str) {
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("<title>") && svg.contains("role=\"img\""));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn nice_axis_bounds() {
        // Steps of 1, 2 or 5 times a power of ten, at most five of them.
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        assert_eq!(nice_axis(7.0), (8.0, 2.0));
        assert_eq!(nice_axis(100.0), (100.0, 20.0));
        assert_eq!(nice_axis(180.0), (200.0, 50.0));
        assert_eq!(nice_axis(2_100.0), (2_500.0, 500.0));
        assert_eq!(nice_axis(4_000.0), (4_000.0, 1_000.0));
        assert_eq!(nice_axis(0.43), (0.5, 0.1));
        assert_eq!(nice_axis(f64::NAN), (1.0, 0.25));
        for max in [1.0, 3.0, 12.0, 38.0, 62.0, 188.0, 1_250.0, 3_750.0, 99_999.0] {
            let (top, step) = nice_axis(max);
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9),
                "{max}: step {step}"
            );
            assert!(
                top >= max && top / step <= 5.0 + 1e-9 && top - step < max,
                "{max}: {top} by {step}"
            );
        }
    }

    #[test]
    fn every_x_label_is_written_slanted_when_many() {
        let few: Vec<String> = (0..5).map(|i| format!("rep {i}")).collect();
        let many: Vec<String> = (0..40).map(|i| format!("representative {i}")).collect();
        let values = |n: usize| Series {
            label: "open".into(),
            class: "s-open",
            values: (0..n).map(|i| i as f64).collect(),
        };
        let upright = bars_and_rates("x", &few, &[values(5)], &[], &|v| v.to_string(), &|v| {
            v.to_string()
        });
        assert!(!upright.contains("rotate(-45"));
        let slanted = bars_and_rates("x", &many, &[values(40)], &[], &|v| v.to_string(), &|v| {
            v.to_string()
        });
        well_formed(&slanted);
        for label in &many {
            assert!(slanted.contains(&format!(">{label}</text>")), "{label}");
        }
        assert_eq!(slanted.matches("rotate(-45").count(), 40);
    }

    #[test]
    fn diverging_charts_on_one_scale_draw_equal_values_equally_long() {
        let bar = |v: f64| Diverging {
            label: "x".into(),
            value: v,
            value_text: v.to_string(),
        };
        let width = |svg: &str| -> String {
            let at = svg.find("<rect class=\"raises\"").expect("a bar");
            svg[at..]
                .split("width=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        };
        let small = diverging_on_scale("a", &[bar(1.06)], "up", "down", 2.48);
        let large = diverging_on_scale("b", &[bar(1.06), bar(2.48)], "up", "down", 2.48);
        assert_eq!(width(&small), width(&large));
        // Alone, each chart fills its half width.
        assert_ne!(width(&diverging("a", &[bar(1.06)], "up", "down")), width(&small));
    }

    #[test]
    fn labels_are_escaped() {
        let s = Series {
            label: "<won & co>".into(),
            class: "s-won",
            values: vec![1.0, f64::NAN, 3.0],
        };
        let svg = bars_and_rates(
            "a \"chart\"",
            &["x<1".into(), "b".into(), "c".into()],
            &[s],
            &[],
            &|v| format!("{v}"),
            &|v| format!("{v}"),
        );
        well_formed(&svg);
        assert!(
            svg.contains("&lt;won &amp; co&gt;")
                && svg.contains("x&lt;1")
                && svg.contains("a &quot;chart&quot;")
        );
        // The NaN month has no bar: two bars drawn.
        assert_eq!(
            svg.matches("<rect class=\"s-won\" x=\"").count(),
            3,
            "two bars and the legend swatch"
        );
    }

    #[test]
    fn diverging_bars_go_right_for_raises_and_left_for_lowers() {
        let rows = vec![
            Diverging {
                label: "Interactions".into(),
                value: 0.5,
                value_text: "+0.50".into(),
            },
            Diverging {
                label: "Response time".into(),
                value: -0.25,
                value_text: "-0.25".into(),
            },
        ];
        let svg = diverging("factors", &rows, "raises", "lowers");
        well_formed(&svg);
        assert_eq!(svg.matches("class=\"raises\"").count(), 1);
        assert_eq!(svg.matches("class=\"lowers\"").count(), 1);
        assert!(svg.contains("Interactions") && svg.contains("-0.25"));
    }

    #[test]
    fn line_and_unit_square_charts_render() {
        let s = Series {
            label: "score".into(),
            class: "s-score",
            values: vec![40.0, 55.0, 61.0],
        };
        let svg = line(
            "history",
            &["a".into(), "b".into(), "c".into()],
            &s,
            100.0,
            &|v| format!("{v:.0}"),
        );
        well_formed(&svg);
        assert_eq!(svg.matches("<circle").count(), 3);
        let roc = unit_square(
            "roc",
            "fpr",
            "tpr",
            &[Curve {
                name: "model".into(),
                class: "s-score",
                points: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
            }],
            false,
            &|v| format!("{v:.2}").replace('.', ","),
        );
        well_formed(&roc);
        assert!(roc.contains("class=\"diagonal\"") && !roc.contains("<circle"));
        assert!(roc.contains(">0,25</text>"), "ticks use the given number format");
    }
}
