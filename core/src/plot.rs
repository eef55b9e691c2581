//! Line charts and scatter plots as standalone SVG (no dependencies, so it also runs in the browser build): the
//! loss curve `lamar train` writes beside its metrics, for example.
//!
//! The chart has axes with rounded ticks, one polyline per series in a fixed palette, and a
//! legend; non-finite points are skipped. Text is XML-escaped.

use std::fmt::Write;

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points `(x, y)`, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A chart's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// About five round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: integers plainly, small or large values in scientific notation.
fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 && v.abs() < 1e4 {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Marks {
    /// A polyline through its points.
    Line,
    /// A dot per point.
    Dots,
}

/// Draws `series` as an SVG document.
pub fn line_chart(chart: &Chart, series: &[Series]) -> String {
    draw(chart, series, Marks::Line)
}

/// Draws every series as dots (a scatter plot), as an SVG document; a series of two points
/// with the same x (a vertical rule, such as a threshold) is drawn as a line.
pub fn scatter_chart(chart: &Chart, series: &[Series]) -> String {
    draw(chart, series, Marks::Dots)
}

fn draw(chart: &Chart, series: &[Series], marks: Marks) -> String {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied().filter(finite))
        .collect();
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        let lo = all.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = all.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        match (lo.is_finite(), hi > lo) {
            (false, _) => (0.0, 1.0),
            (true, false) => (lo - 0.5, lo + 0.5),
            (true, true) => (lo, hi),
        }
    };
    let (x0, x1) = bounds(|p| p.0);
    let (y0, y1) = bounds(|p| p.1);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * plot_w;
    let py = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>
"##,
        WIDTH / 2.0,
        escape(&chart.title)
    );
    for t in ticks(x0, x1) {
        let x = px(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#888"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 18.0,
            label(t)
        );
    }
    for t in ticks(y0, y1) {
        let y = py(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        escape(&chart.x_label),
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(&chart.y_label)
    );
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| finite(p))
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let rule = s.points.len() == 2 && s.points[0].0 == s.points[1].0;
        if marks == Marks::Dots && !rule {
            for &(x, y) in s.points.iter().filter(|p| finite(p)) {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}" fill-opacity="0.7"/>"#,
                    px(x),
                    py(y)
                );
            }
        }
        let path = if marks == Marks::Dots && !rule {
            String::new()
        } else {
            format!(
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                points.join(" ")
            )
        };
        let _ = writeln!(
            svg,
            r#"{path}
<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            LEFT + plot_w - 150.0,
            TOP + 16.0 + 16.0 * k as f64,
            LEFT + plot_w - 130.0,
            TOP + 16.0 + 16.0 * k as f64,
            LEFT + plot_w - 124.0,
            TOP + 20.0 + 16.0 * k as f64,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "loss <DFT> & CE".into(),
            x_label: "step".into(),
            y_label: "nats".into(),
        }
    }

    #[test]
    fn each_series_is_a_polyline_inside_the_plot() {
        let series = [
            Series {
                name: "loss".into(),
                points: (1..=50).map(|k| (k as f64, 5.0 / k as f64)).collect(),
            },
            Series {
                name: "cross-entropy".into(),
                points: vec![(1.0, 6.0), (2.0, f64::NAN), (50.0, 0.5)],
            },
        ];
        let svg = line_chart(&chart(), &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("loss &lt;DFT&gt; &amp; CE"), "title escaped");
        let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<polyline")).collect();
        assert_eq!(lines.len(), 2);
        let points = |line: &str| -> Vec<(f64, f64)> {
            let list = line.split("points=\"").nth(1).unwrap();
            let list = &list[..list.find('"').unwrap()];
            list.split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        };
        let first = points(lines[0]);
        assert_eq!(first.len(), 50);
        assert_eq!(points(lines[1]).len(), 2, "the NaN point is skipped");
        for &(x, y) in &first {
            assert!((LEFT..=WIDTH - RIGHT).contains(&x), "{x}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "{y}");
        }
        // Falling values are drawn going down (SVG y grows downwards).
        assert!(first[0].1 < first[49].1);
        assert_eq!(first[0].0, LEFT);
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.013, 0.087);
        assert!(t.iter().all(|v| (0.013..=0.087).contains(v)), "{t:?}");
        assert_eq!(label(2e-4), "2.0e-4");
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(300.0), "300");
    }

    #[test]
    fn an_empty_or_flat_chart_is_still_drawn() {
        let svg = line_chart(&chart(), &[]);
        assert!(svg.ends_with("</svg>\n"));
        let flat = Series {
            name: "flat".into(),
            points: vec![(1.0, 2.0)],
        };
        assert!(line_chart(&chart(), &[flat]).contains("<polyline"));
    }
}
