//! The peer table as an SVG bar chart drawn by hand: one panel per measure, a bar per gateway,
//! on a log scale, because the gateways differ by orders of magnitude.

use std::fmt::Write as _;

/// One measure: its title and each gateway's value (none: not measured).
pub struct Panel {
    pub title: String,
    pub unit: &'static str,
    pub values: Vec<(&'static str, Option<f64>)>,
}

const WIDTH: f64 = 720.0;
const LEFT: f64 = 140.0;
const RIGHT: f64 = 90.0;
const BAR: f64 = 18.0;
const GAP: f64 = 6.0;
const TITLE: f64 = 28.0;
const COLORS: [&str; 4] = ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a"];

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decades covering every positive value, at least one.
fn decades(values: &[f64]) -> (i32, i32) {
    let logs = values.iter().filter(|v| **v > 0.0).map(|v| v.log10());
    let (lo, hi) = logs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    if !lo.is_finite() {
        return (0, 1);
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "log10 of a measured value is a small number"
    )]
    let (lo, hi) = (lo.floor() as i32, hi.ceil() as i32);
    (lo, hi.max(lo + 1))
}

pub fn svg(panels: &[Panel]) -> String {
    let rows: usize = panels.iter().map(|p| p.values.len()).sum();
    #[allow(clippy::cast_precision_loss, reason = "a handful of panels and bars")]
    let height = panels.len() as f64 * (TITLE + 24.0) + rows as f64 * (BAR + GAP) + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"#fff\"/>\n"
    );
    let plot = WIDTH - LEFT - RIGHT;
    let mut y = 0.0;
    for panel in panels {
        let values: Vec<f64> = panel.values.iter().filter_map(|(_, v)| *v).collect();
        let (lo, hi) = decades(&values);
        let x_of = |v: f64| {
            LEFT + plot * (v.max(10f64.powi(lo)).log10() - f64::from(lo)) / f64::from(hi - lo)
        };
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{} (log scale)</text>",
            y + 18.0,
            esc(&panel.title)
        );
        y += TITLE;
        let top = y;
        #[allow(clippy::cast_precision_loss, reason = "a handful of bars")]
        let bottom = top + panel.values.len() as f64 * (BAR + GAP);
        // Grid first, so the bars are drawn over it.
        for decade in lo..=hi {
            let x = x_of(10f64.powi(decade));
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ccc\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                bottom + 12.0,
                trim_number(&format!("{:.3}", 10f64.powi(decade)))
            );
        }
        for (i, (name, value)) in panel.values.iter().enumerate() {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT - 8.0,
                y + BAR - 5.0,
                esc(name)
            );
            let label = value.map_or_else(
                || "not measured".to_owned(),
                |v| format!("{} {}", three_figures(v), panel.unit),
            );
            let end = value.map_or(LEFT, x_of);
            let _ = writeln!(
                out,
                "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\" fill=\"{}\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                end - LEFT,
                COLORS[i % COLORS.len()],
                end + 4.0,
                y + BAR - 5.0,
                esc(&label)
            );
            y += BAR + GAP;
        }
        y += 24.0;
    }
    out.push_str("</svg>\n");
    out
}

/// About three significant figures: `20643`, `828`, `32.2`, `0.056`.
fn three_figures(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `12.500 ms` → `12.5 ms`, `100.000` → `100`.
fn trim_number(text: &str) -> String {
    let (number, rest) = text.split_once(' ').unwrap_or((text, ""));
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    if rest.is_empty() {
        number.to_owned()
    } else {
        format!("{number} {rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_cover_every_value_and_labels_lose_trailing_zeros() {
        assert_eq!(decades(&[15.0, 12_000.0]), (1, 5));
        assert_eq!(decades(&[0.02, -0.5]), (-2, -1));
        assert_eq!(decades(&[]), (0, 1));
        assert_eq!(trim_number("12.500 ms"), "12.5 ms");
        assert_eq!(trim_number("100.000"), "100");
        assert_eq!(three_figures(20_642.857), "20643");
        assert_eq!(three_figures(32.215), "32.2");
        assert_eq!(three_figures(0.0561), "0.056");
    }

    #[test]
    fn every_gateway_gets_a_bar_and_a_label() {
        let text = svg(&[Panel {
            title: "CPU".to_owned(),
            unit: "µs",
            values: vec![
                ("nginx", Some(15.0)),
                ("LiteLLM", Some(12_000.0)),
                ("x", None),
            ],
        }]);
        assert_eq!(text.matches("<rect x=").count(), 3, "{text}");
        assert!(
            text.contains(">15.0 µs<") && text.contains(">not measured<"),
            "{text}"
        );
    }
}
