//! One 2-D plotters panel of the Theory notebook's figures: a heat map, curves and point
//! clouds on shared axes, with a legend for the named ones.

use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A polyline of a panel.
#[derive(Clone)]
pub struct Curve {
    pub name: String,
    pub pts: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub width: u32,
}

/// A cloud of points of a panel.
#[derive(Clone)]
pub struct Dots {
    pub name: String,
    pub pts: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub size: u32,
}

/// One heat-map cell: the rectangle [x0, x1] x [y0, y1] with a value in [0, 1].
#[derive(Clone, Copy)]
pub struct Heat {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
    pub v: f64,
}

pub fn curve(name: &str, pts: Vec<(f64, f64)>, color: RGBColor, width: u32) -> Curve {
    Curve {
        name: name.to_string(),
        pts,
        color,
        width,
    }
}

pub fn dots(name: &str, pts: Vec<(f64, f64)>, color: RGBColor, size: u32) -> Dots {
    Dots {
        name: name.to_string(),
        pts,
        color,
        size,
    }
}

/// Draws one panel: heat map first, then curves, then points; a legend for named items.
pub fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    xr: (f64, f64),
    yr: (f64, f64),
    heat: &[Heat],
    curves: &[Curve],
    clouds: &[Dots],
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(36)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(6)
        .y_labels(6)
        .draw()?;
    chart.draw_series(heat.iter().map(|h| {
        let v = h.v.clamp(0.0, 1.0);
        let c = RGBColor((255.0 - 170.0 * v) as u8, (255.0 - 110.0 * v) as u8, 255);
        Rectangle::new([(h.x0, h.y0), (h.x1, h.y1)], c.filled())
    }))?;
    let mut named = false;
    for c in curves {
        let col = c.color;
        let a = chart.draw_series(LineSeries::new(
            c.pts.iter().copied(),
            col.stroke_width(c.width),
        ))?;
        if !c.name.is_empty() {
            named = true;
            a.label(c.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], col.stroke_width(2))
            });
        }
    }
    for d in clouds {
        let col = d.color;
        let r = d.size;
        let a = chart.draw_series(
            d.pts
                .iter()
                .map(|&p| Circle::new(p, r, col.mix(0.55).filled())),
        )?;
        if !d.name.is_empty() {
            named = true;
            a.label(d.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 7, y), 3, col.filled()));
        }
    }
    if named {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}

/// The ellipse {m + k L u : |u| = 1} of a 2x2 covariance c = L L^T (k standard deviations).
pub fn ellipse(m: (f64, f64), c: [[f64; 2]; 2], k: f64) -> Vec<(f64, f64)> {
    let l11 = c[0][0].sqrt();
    let l21 = c[1][0] / l11;
    let l22 = (c[1][1] - l21 * l21).sqrt();
    (0..=160)
        .map(|i| {
            let a = i as f64 / 160.0 * std::f64::consts::TAU;
            let (u, v) = (k * a.cos(), k * a.sin());
            (m.0 + l11 * u, m.1 + l21 * u + l22 * v)
        })
        .collect()
}
