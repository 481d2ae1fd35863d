//! End to end: a small results folder written through the `mtcool_train` types, then
//! `write_report` on it: table, PNG and SVG figures, and one-line errors on bad input.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtcool_report::{write_report, ReportContext};
use mtcool_train::config::{PaperTable, PaperValue};
use mtcool_train::results::{run_path, write_json, MethodSummary, RunRecord, Summary};

const TASKS: [&str; 2] = ["even", "odd"];

/// A run with a 4-epoch history, built from JSON so that fields added later (with serde
/// defaults) do not break the test.
fn record(method: &str, seed: u64, skill: f64) -> RunRecord {
    let acc =
        |epoch: f64, task: usize| skill - 0.04 / epoch - 0.002 * task as f64 + 0.001 * seed as f64;
    let history: Vec<serde_json::Value> = (1..=4)
        .map(|epoch| {
            let e = epoch as f64;
            let mut val = serde_json::Map::new();
            let mut train_loss = serde_json::Map::new();
            for (i, t) in TASKS.iter().enumerate() {
                val.insert(format!("{t}/accuracy"), acc(e, i).into());
                val.insert(format!("{t}/loss"), (0.3 / e).into());
                train_loss.insert(t.to_string(), (0.5 / e + 0.01 * seed as f64).into());
            }
            serde_json::json!({
                "epoch": epoch, "seconds": 1.0, "train_loss": train_loss, "val": val
            })
        })
        .collect();
    let metrics: BTreeMap<String, f64> = TASKS
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{t}/accuracy"), acc(4.0, i)))
        .collect();
    serde_json::from_value(serde_json::json!({
        "method": method, "seed": seed, "epochs": 4, "seconds": 4.0,
        "images_per_second": 100.0, "metrics": metrics, "params": 1000,
        "fingerprint": "test", "history": history
    }))
    .unwrap()
}

/// Writes `<root>/toy/` with two methods × two seeds and returns the experiment folder.
fn results_folder(root: &Path) -> PathBuf {
    let dir = root.join("toy");
    let mut methods = BTreeMap::new();
    for (method, skill) in [("independent", 0.985), ("joint", 0.99)] {
        let runs: Vec<RunRecord> = (0..2).map(|s| record(method, s, skill)).collect();
        for r in &runs {
            write_json(&run_path(&dir, method, r.seed, false), r).unwrap();
        }
        methods.insert(method.to_string(), MethodSummary::from_runs(&runs));
    }
    let summary = Summary {
        experiment: "toy".into(),
        quick: false,
        device: "cpu".into(),
        optimizer: String::new(),
        methods,
        jobs: None,
        wall_seconds: None,
    };
    write_json(&dir.join("summary.json"), &summary).unwrap();
    dir
}

fn context() -> ReportContext {
    let value = |mean: f64, sd: Option<f64>| PaperValue { mean, sd };
    let paper = PaperTable {
        source: "a toy paper".into(),
        metrics: vec!["even/accuracy".into(), "odd/accuracy".into()],
        params: [("independent".to_string(), "2×".to_string())].into(),
        methods: [
            (
                "independent".to_string(),
                [
                    ("even/accuracy".to_string(), value(0.98, Some(0.001))),
                    ("odd/accuracy".to_string(), value(0.975, Some(0.002))),
                ]
                .into(),
            ),
            (
                "joint".to_string(),
                [
                    ("even/accuracy".to_string(), value(0.99, None)),
                    ("odd/accuracy".to_string(), value(0.985, None)),
                ]
                .into(),
            ),
        ]
        .into(),
    };
    ReportContext {
        title: "toy even / odd".into(),
        paper: Some(paper),
        order: vec!["joint".into(), "independent".into()],
        delta_m_baseline: Some("independent".into()),
        ..ReportContext::default()
    }
}

#[test]
fn report_writes_table_and_figures() {
    let root = tempfile::tempdir().unwrap();
    let dir = results_folder(root.path());
    let files = write_report(&dir, &context()).unwrap();
    assert!(files.warnings.is_empty(), "{:?}", files.warnings);

    let table = std::fs::read_to_string(&files.table).unwrap();
    assert_eq!(files.table, dir.join("table.md"));
    assert!(table.starts_with("# toy — toy even / odd"), "{table}");
    assert!(table.contains("| Δm% ours | Δm% paper |"), "{table}");
    assert!(table.contains("| independent | 2× | 2 |"), "{table}");
    assert!(table.contains("| ref | ref |"), "{table}");
    let joint = table.find("| joint |").unwrap();
    assert!(
        joint < table.find("| independent |").unwrap(),
        "config order"
    );

    let names: Vec<String> = files
        .figures
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for stem in ["val_curves", "train_loss", "test_metrics"] {
        for ext in ["png", "svg"] {
            assert!(names.contains(&format!("{stem}.{ext}")), "{names:?}");
        }
    }
    let titles = [
        (
            "val_curves",
            "toy (full run): validation accuracy per epoch, mean ± sd over runs",
        ),
        (
            "train_loss",
            "toy (full run): training loss per epoch, mean ± sd over runs",
        ),
        (
            "test_metrics",
            "toy (full run): test accuracy per method, ours vs the paper (mean ± sd)",
        ),
    ];
    for (stem, title) in titles {
        let png_path = dir.join("figures").join(format!("{stem}.png"));
        let bytes = std::fs::read(&png_path).unwrap();
        assert!(!bytes.is_empty());
        let png = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert!(png.width() > 500 && png.height() > 300);
        let inked = png.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(inked > 5_000, "{stem}.png is nearly blank ({inked} pixels)");
        let svg = std::fs::read_to_string(dir.join("figures").join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}.svg");
        assert!(svg.contains(title), "{stem}.svg lacks its title `{title}`");
    }
    let svg = std::fs::read_to_string(dir.join("figures/val_curves.svg")).unwrap();
    for label in [
        "task even: validation accuracy",
        "epoch",
        "joint (n = 2)",
        "independent (n = 2)",
    ] {
        assert!(svg.contains(label), "val_curves.svg lacks `{label}`");
    }
    let svg = std::fs::read_to_string(dir.join("figures/test_metrics.svg")).unwrap();
    for label in ["paper", "ours", "test accuracy (%), axis zoomed"] {
        assert!(svg.contains(label), "test_metrics.svg lacks `{label}`");
    }

    // no temporary files are left behind (atomic writes)
    for folder in [dir.clone(), dir.join("figures")] {
        for entry in std::fs::read_dir(folder).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{name}");
        }
    }
}

#[test]
fn report_without_paper_or_run_files_still_draws_what_it_can() {
    let root = tempfile::tempdir().unwrap();
    let dir = results_folder(root.path());
    std::fs::remove_file(run_path(&dir, "joint", 1, false)).unwrap();
    let files = write_report(&dir, &ReportContext::default()).unwrap();
    assert_eq!(files.warnings.len(), 1);
    assert!(files.warnings[0].contains("joint-seed1.json"));
    let table = std::fs::read_to_string(&files.table).unwrap();
    assert!(!table.contains("Δm%"), "{table}");
    let svg = std::fs::read_to_string(dir.join("figures/test_metrics.svg")).unwrap();
    assert!(svg.contains("toy (full run): test accuracy per method (mean ± sd)"));
    let svg = std::fs::read_to_string(dir.join("figures/val_curves.svg")).unwrap();
    assert!(svg.contains("joint (n = 1)"));
}

fn one_line_error(dir: &Path) -> String {
    let e = write_report(dir, &context()).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn bad_input_gives_one_line_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let e = one_line_error(&root.path().join("nothing"));
    assert!(e.contains("summary.json") && e.contains("reproduce"), "{e}");

    let dir = results_folder(root.path());
    std::fs::write(dir.join("summary.json"), "{ truncated").unwrap();
    let e = one_line_error(&dir);
    assert!(
        e.contains("summary.json") && e.contains("not a valid results file"),
        "{e}"
    );

    let dir = results_folder(root.path());
    std::fs::write(run_path(&dir, "joint", 0, false), "[]").unwrap();
    let e = one_line_error(&dir);
    assert!(e.contains("joint-seed0.json"), "{e}");

    let dir = results_folder(root.path());
    let wrong = record("independent", 0, 0.9);
    write_json(&run_path(&dir, "joint", 0, false), &wrong).unwrap();
    let e = one_line_error(&dir);
    assert!(
        e.contains("joint-seed0.json") && e.contains("holds method `independent`"),
        "{e}"
    );
}

#[test]
fn html_report_is_one_self_contained_page_with_the_table_figures_and_runs() {
    let root = tempfile::tempdir().unwrap();
    let dir = results_folder(root.path());
    // a baseline the results fail: joint is held to 99.9 %
    let baselines = root.path().join("baselines");
    let mut held = MethodSummary::default();
    held.mean.insert("even/accuracy".into(), 0.999);
    let summary: Summary = mtcool_train::results::read_json(&dir.join("summary.json")).unwrap();
    let baseline = mtcool_report::regress::Baseline::from_summary(
        &Summary {
            methods: [("joint".to_string(), held)].into(),
            ..summary.clone()
        },
        None,
        1.0,
    );
    mtcool_report::regress::write_baseline(&baselines.join("toy.json"), &baseline).unwrap();
    let context = context().with_baselines(&baselines);
    let files = write_report(&dir, &context).unwrap();

    assert_eq!(files.html, dir.join("index.html"));
    let page = std::fs::read_to_string(&files.html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    // the table: one row per method, config order, the paper's numbers and Δm%
    let body = &page[page.find("<table class=\"results\">").unwrap()..];
    let body = &body[..body.find("</table>").unwrap()];
    assert_eq!(
        body.matches("<tr><td><a href=\"#runs-").count(),
        2,
        "{body}"
    );
    assert!(body.find(">joint<").unwrap() < body.find(">independent<").unwrap());
    assert!(
        body.contains("Δm% vs independent") && body.contains(">ref<"),
        "{body}"
    );
    assert!(
        body.contains(">98.00 (0.100)<"),
        "the paper's mean (sd): {body}"
    );
    // every SVG figure inlined, with links to both files
    let svgs = files
        .figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    assert!(svgs >= 3);
    assert_eq!(page.matches("<figure id=").count(), svgs);
    assert_eq!(page.matches("<svg").count(), svgs);
    assert!(page.contains("<a href=\"figures/val_curves.png\">PNG</a>"));
    // runs with links to their files; the regression check failed on joint
    assert!(
        page.contains("<a href=\"runs/joint-seed1.json\">run</a>"),
        "{page}"
    );
    assert!(page.contains("class=\"fail\">FAILED: toy"), "{page}");
    // nothing from a network: no script, no remote source or link
    for needle in ["<script", "src=\"http", "href=\"http", "url(http", "<link"] {
        assert!(!page.contains(needle), "the page has `{needle}`");
    }
    // the results index links the experiment
    let index = std::fs::read_to_string(&files.index).unwrap();
    assert_eq!(files.index, root.path().join("index.html"));
    assert!(
        index.contains("<a href=\"toy/index.html\">toy</a>"),
        "{index}"
    );
    assert!(index.contains("toy even / odd"), "{index}");
    // summary.csv: a row per method and metric
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2, "{csv}");
}
