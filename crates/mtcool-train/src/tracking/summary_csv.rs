//! `summary.csv`: one row per method × metric of `summary.json` (mean, sd, n), beside the
//! paper's number and the difference, in the JSON's units (fractions).

use crate::config::PaperTable;
use crate::results::Summary;
use crate::table::method_order;

/// The columns of `summary.csv`.
pub const COLUMNS: [&str; 8] = [
    "method",
    "metric",
    "mean",
    "sd",
    "n",
    "paper_mean",
    "paper_sd",
    "delta",
];

/// The CSV text: methods in `order` (then the rest by name), each metric by name; `sd` is
/// empty for one run, the paper's cells and `delta` (ours − paper) where it published none.
pub fn render(summary: &Summary, paper: Option<&PaperTable>, order: &[String]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail; a failed record would only shorten the text.
    let _ = writer.write_record(COLUMNS);
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for method in method_order(summary, order) {
        let ours = &summary.methods[method];
        let n = ours.runs.len();
        let theirs = paper.and_then(|p| p.methods.get(method));
        for (metric, mean) in &ours.mean {
            let published = theirs.and_then(|t| t.get(metric));
            let sd = ours.std.get(metric).copied().filter(|_| n > 1);
            let _ = writer.write_record([
                method.to_string(),
                metric.clone(),
                mean.to_string(),
                cell(sd),
                n.to_string(),
                cell(published.map(|p| p.mean)),
                cell(published.and_then(|p| p.sd)),
                cell(published.map(|p| mean - p.mean)),
            ]);
        }
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::PaperValue;
    use crate::results::{MethodSummary, RunBrief};

    #[test]
    fn rows_per_method_and_metric_with_the_paper_beside() {
        let brief = |seed, acc: f64| RunBrief {
            seed,
            epochs: 1,
            seconds: 1.0,
            metrics: [("even/accuracy".to_string(), acc)].into(),
        };
        let method = |runs: Vec<RunBrief>, mean: f64, sd: f64| MethodSummary {
            runs,
            mean: [("even/accuracy".to_string(), mean)].into(),
            std: [("even/accuracy".to_string(), sd)].into(),
        };
        let summary = Summary {
            experiment: "toy".into(),
            quick: true,
            device: "cpu".into(),
            optimizer: String::new(),
            methods: [
                (
                    "joint".to_string(),
                    method(vec![brief(0, 0.9), brief(1, 0.8)], 0.85, 0.07),
                ),
                ("mgda".to_string(), method(vec![brief(0, 0.9)], 0.9, 0.0)),
            ]
            .into(),
            jobs: None,
            wall_seconds: None,
        };
        let paper = PaperTable {
            methods: [(
                "joint".to_string(),
                [(
                    "even/accuracy".to_string(),
                    PaperValue {
                        mean: 0.95,
                        sd: None,
                    },
                )]
                .into(),
            )]
            .into(),
            ..PaperTable::default()
        };
        let order = ["mgda".to_string()];
        let text = render(&summary, Some(&paper), &order);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines[1], "mgda,even/accuracy,0.9,,1,,,");
        let joint: Vec<&str> = lines[2].split(',').collect();
        assert_eq!(
            joint,
            [
                "joint",
                "even/accuracy",
                "0.85",
                "0.07",
                "2",
                "0.95",
                "",
                joint[7]
            ]
        );
        let delta: f64 = joint[7].parse().unwrap();
        assert!((delta - (0.85 - 0.95)).abs() < 1e-12);
    }
}
