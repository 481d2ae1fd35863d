//! The scalars a run logs, named once for TensorBoard's tags and `history.csv`'s columns.

use crate::results::{EpochRecord, Metrics};

/// One epoch's scalars, tagged `train/<task>/loss`, `val/<task>/<metric>`, `optim/lr`,
/// `mtcool/clamped_fraction/<task>`, `diagnostics/gradient_cosine/<a>~<b>`,
/// `method/task_weight/<task>` and `time/epoch_seconds`; absent values are left out.
pub fn epoch_scalars(record: &EpochRecord) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut push = |prefix: &str, key: &str, suffix: &str, value: f64| {
        out.push((format!("{prefix}{key}{suffix}"), value));
    };
    for (task, loss) in &record.train_loss {
        push("train/", task, "/loss", *loss);
    }
    for (key, value) in &record.val {
        push("val/", key, "", *value);
    }
    if let Some(lr) = record.learning_rate {
        push("optim/lr", "", "", lr);
    }
    for (task, fraction) in &record.clamped_fraction {
        push("mtcool/clamped_fraction/", task, "", *fraction);
    }
    for (pair, cosine) in &record.gradient_cosine {
        push("diagnostics/gradient_cosine/", pair, "", *cosine);
    }
    for (task, weight) in &record.task_weights {
        push("method/task_weight/", task, "", *weight);
    }
    push("time/epoch_seconds", "", "", record.seconds);
    out
}

/// The test metrics of a finished run, tagged `test/<task>/<metric>`.
pub fn test_scalars(metrics: &Metrics) -> Vec<(String, f64)> {
    metrics
        .iter()
        .map(|(key, value)| (format!("test/{key}"), *value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_gets_a_tag_and_absent_ones_none() {
        let record = EpochRecord {
            epoch: 2,
            seconds: 1.5,
            train_loss: [("even".to_string(), 0.25)].into(),
            val: [("even/accuracy".to_string(), 0.9)].into(),
            clamped_fraction: [("even".to_string(), 0.1)].into(),
            gradient_cosine: [("even~odd".to_string(), -0.2)].into(),
            task_weights: Default::default(),
            learning_rate: Some(0.01),
        };
        let tags: Vec<String> = epoch_scalars(&record).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            tags,
            [
                "train/even/loss",
                "val/even/accuracy",
                "optim/lr",
                "mtcool/clamped_fraction/even",
                "diagnostics/gradient_cosine/even~odd",
                "time/epoch_seconds"
            ]
        );
        let test = test_scalars(&[("odd/accuracy".to_string(), 0.5)].into());
        assert_eq!(test, [("test/odd/accuracy".to_string(), 0.5)]);
    }
}
