//! Redraws the report (`table.md` and the figures) of a results folder without training:
//! `cargo run --release -p mtcool-report --example redraw -- <out>/<experiment> [config.toml]`.
//! Without a config the table has no paper column and methods come in the summary's order.

use std::path::Path;

use mtcool_report::{write_report, ReportContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: redraw <experiment folder> [experiment config]")?;
    let context = match args.next() {
        Some(config) => {
            ReportContext::from_config(&mtcool_train::ExperimentConfig::load(Path::new(&config))?)
        }
        None => ReportContext::default(),
    };
    let files = write_report(Path::new(&dir), &context)?;
    println!("{}", files.table.display());
    for figure in &files.figures {
        println!("{}", figure.display());
    }
    for warning in &files.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
