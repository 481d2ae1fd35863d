//! `history.csv`: one row per epoch, one column per logged scalar (the TensorBoard tags of
//! [`super::scalars::epoch_scalars`]), for users' own plots.

use std::collections::BTreeMap;

use crate::results::EpochRecord;

use super::scalars::epoch_scalars;

/// The CSV text of a run's history: an `epoch` column, then every tag any epoch logged (in
/// first-seen order); an epoch without a value leaves its cell empty. Values are written with
/// Rust's shortest round-trip formatting, so they read back as the JSON's numbers.
pub fn render(history: &[EpochRecord]) -> String {
    let rows: Vec<BTreeMap<String, f64>> = history
        .iter()
        .map(|r| epoch_scalars(r).into_iter().collect())
        .collect();
    let mut columns: Vec<String> = Vec::new();
    for record in history {
        for (tag, _) in epoch_scalars(record) {
            if !columns.contains(&tag) {
                columns.push(tag);
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("epoch").chain(columns.iter().map(String::as_str));
    // Writing to a Vec cannot fail; a failed record would only shorten the text.
    let _ = writer.write_record(header);
    for (record, values) in history.iter().zip(&rows) {
        let cells = std::iter::once(record.epoch.to_string()).chain(
            columns
                .iter()
                .map(|c| values.get(c).map_or(String::new(), f64::to_string)),
        );
        let _ = writer.write_record(cells);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn epoch(n: usize, weight: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch: n,
            seconds: 2.0,
            train_loss: [("even".to_string(), 0.1 * n as f64)].into(),
            val: [("even/accuracy".to_string(), 0.123_456_789_012_345_67)].into(),
            clamped_fraction: Default::default(),
            gradient_cosine: Default::default(),
            task_weights: weight
                .map(|w| ("even".to_string(), w))
                .into_iter()
                .collect(),
            learning_rate: None,
        }
    }

    #[test]
    fn one_row_per_epoch_with_empty_cells_where_a_value_is_missing() {
        let text = render(&[epoch(1, None), epoch(2, Some(0.5))]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            [
                "epoch",
                "train/even/loss",
                "val/even/accuracy",
                "time/epoch_seconds",
                "method/task_weight/even"
            ]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(rows[0][4], "");
        assert_eq!(rows[1][4], "0.5");
        let back: f64 = rows[1][2].parse().unwrap();
        assert_eq!(back, 0.123_456_789_012_345_67);
    }
}
