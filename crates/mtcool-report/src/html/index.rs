//! `<out>/index.html`: one line per experiment folder beside it that has a report.

use std::fmt::Write as _;
use std::path::Path;

use mtcool_train::results::{read_json, Summary};

use super::{escape, href, page};

/// One experiment as the index lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Folder name (the experiment).
    pub name: String,
    /// The first line of its `table.md` after the name (the config's description).
    pub title: String,
    /// Its summary.
    pub summary: Summary,
}

/// The experiments under `out`: folders with both `summary.json` and `index.html`, by name.
/// Folders whose summary does not parse are left out.
pub fn entries(out: &Path) -> Vec<Entry> {
    let Ok(dirs) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = dirs
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("index.html").is_file())
        .filter_map(|dir| {
            let summary: Summary = read_json(&dir.join("summary.json")).ok()?;
            let name = dir.file_name()?.to_string_lossy().into_owned();
            let title = std::fs::read_to_string(dir.join("table.md"))
                .ok()
                .and_then(|t| {
                    let first = t.lines().next()?.to_string();
                    first.split_once(" — ").map(|(_, title)| title.to_string())
                })
                .unwrap_or_default();
            Some(Entry {
                name,
                title,
                summary,
            })
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Renders the index of `entries`.
pub fn render(entries: &[Entry]) -> String {
    let mut body = String::from(
        "<h1>mtcool results</h1>\n<p class=\"sub\">One report per experiment.</p>\n<table>\n\
         <thead><tr><th>Experiment</th><th>Description</th><th>Runs</th><th>Methods</th>\
         <th>Device</th></tr></thead>\n<tbody>\n",
    );
    for entry in entries {
        let s = &entry.summary;
        let runs: usize = s.methods.values().map(|m| m.runs.len()).sum();
        let mode = if s.quick { "quick" } else { "full" };
        let _ = writeln!(
            body,
            "<tr><td><a href=\"{}/index.html\">{}</a></td><td>{}</td>\
             <td class=\"num\">{runs} {mode}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            href(&entry.name),
            escape(&entry.name),
            escape(&entry.title),
            s.methods.len(),
            escape(&s.device)
        );
    }
    body.push_str("</tbody>\n</table>\n");
    page("mtcool results", &body)
}
