//! The HTML report: `<experiment>/index.html`, one self-contained page per experiment (inline
//! CSS and SVG figures, no script, nothing fetched from a network), and `<out>/index.html`
//! linking the experiments found beside it. Links to run files, models, `history.csv` and
//! TensorBoard logs are relative, so a results folder can be copied or served as it is.

pub mod experiment;
pub mod index;

use std::fmt::Write as _;

/// The page's style sheet, inlined in every page.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;\
max-width:1200px;padding:1.5rem;color:#1b1f24;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}\
.sub{color:#57606a;margin-top:0}\
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}\
th,td{border:1px solid #d0d7de;padding:.25rem .5rem}th{background:#f6f8fa}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.best{font-weight:700}.better{color:#1a7f37}.worse{color:#cf222e}\
.pass{color:#1a7f37;font-weight:700}.fail{color:#cf222e;font-weight:700}\
figure{margin:1rem 0}figure svg{max-width:100%;height:auto;display:block}\
figcaption{color:#57606a;font-size:.9rem}dl{display:grid;grid-template-columns:max-content auto;\
gap:.1rem 1rem}dt{color:#57606a}dd{margin:0}details{margin:.4rem 0}summary{cursor:pointer}\
code{background:#f6f8fa;padding:0 .2rem}.warn{color:#9a6700}";

/// Escapes text for HTML element content and attribute values.
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

/// A link's target, with the characters a relative URL cannot carry as they are
/// (spaces, `#`, `?`, `%`, quotes, brackets) percent-encoded.
pub fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// A whole page: doctype, head with the title and style, then `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n\
         <footer class=\"sub\"><p>Written by mtcool {}.</p></footer>\n</body>\n</html>\n",
        escape(title),
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_encodes_links() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(
            href("runs/mtcool[samples = 2]-seed0.json"),
            "runs/mtcool%5Bsamples%20%3D%202%5D-seed0.json"
        );
    }
}
