//! Task splits: one labelled image set divided into tasks by class.
//!
//! MNIST even/odd (paper Table 1) is two tasks over disjoint digit sets; each task sees only
//! its own images and its labels are remapped to `0..k` in the order the classes are listed.

use ndarray::{Array1, Array3, Axis};

use crate::error::{DataError, Result};

/// A labelled set of single-channel images: `images` is (count, rows, columns).
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Pixel values, (count, rows, columns).
    pub images: Array3<u8>,
    /// One label per image.
    pub labels: Array1<u8>,
}

impl ImageSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        ImageSet {
            images: self.images.select(Axis(0), indices),
            labels: self.labels.select(Axis(0), indices),
        }
    }

    /// The samples `start..end` (clamped to the set).
    pub fn range(&self, start: usize, end: usize) -> ImageSet {
        let end = end.min(self.len());
        let start = start.min(end);
        let indices: Vec<usize> = (start..end).collect();
        self.select(&indices)
    }
}

/// One task: a name and the original classes it classifies, in the order of its new labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassTask {
    /// Task name used in metric keys (`even`, `odd`, ...).
    pub name: String,
    /// Original class labels; class `classes[k]` becomes label `k` of this task.
    pub classes: Vec<u8>,
}

/// Train, validation and test sets of one task, labels remapped to `0..num_classes`.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// Task name.
    pub name: String,
    /// Number of classes of this task.
    pub num_classes: usize,
    /// Training samples.
    pub train: ImageSet,
    /// Validation samples.
    pub val: ImageSet,
    /// Test samples.
    pub test: ImageSet,
}

/// Checks that tasks are non-empty, pairwise disjoint and have no repeated class.
pub fn validate_tasks(tasks: &[ClassTask]) -> Result<()> {
    if tasks.is_empty() {
        return Err(DataError::Split("no task defined".into()));
    }
    let mut seen = std::collections::HashMap::new();
    for task in tasks {
        if task.classes.is_empty() {
            return Err(DataError::Split(format!(
                "task `{}` has no class",
                task.name
            )));
        }
        for &c in &task.classes {
            if let Some(other) = seen.insert(c, task.name.clone()) {
                return Err(DataError::Split(format!(
                    "class {c} appears in task `{other}` and in task `{}`",
                    task.name
                )));
            }
        }
    }
    Ok(())
}

/// The samples of `set` whose class belongs to `task`, relabelled to the task's `0..k`.
pub fn task_subset(set: &ImageSet, task: &ClassTask) -> ImageSet {
    let mut map = [u8::MAX; 256];
    for (k, &c) in task.classes.iter().enumerate() {
        map[c as usize] = k as u8;
    }
    let indices: Vec<usize> = set
        .labels
        .iter()
        .enumerate()
        .filter(|(_, &l)| map[l as usize] != u8::MAX)
        .map(|(i, _)| i)
        .collect();
    let mut subset = set.select(&indices);
    subset.labels.mapv_inplace(|l| map[l as usize]);
    subset
}

/// Splits `train_file` into its first `train_size` samples (training) and the rest
/// (validation), keeps `test_file` as the test set, and divides all three by task.
pub fn split_by_class(
    train_file: &ImageSet,
    test_file: &ImageSet,
    train_size: usize,
    tasks: &[ClassTask],
) -> Result<Vec<TaskData>> {
    validate_tasks(tasks)?;
    if train_size == 0 || train_size > train_file.len() {
        return Err(DataError::Split(format!(
            "train_size {train_size} must be in 1..={} (the training file's size)",
            train_file.len()
        )));
    }
    let train = train_file.range(0, train_size);
    let val = train_file.range(train_size, train_file.len());
    split_by_class_with_val(&train, &val, test_file, tasks)
}

/// Divides given training, validation and test sets by task (datasets that ship their own
/// validation split, such as OrganCMNIST).
pub fn split_by_class_with_val(
    train: &ImageSet,
    val: &ImageSet,
    test: &ImageSet,
    tasks: &[ClassTask],
) -> Result<Vec<TaskData>> {
    validate_tasks(tasks)?;
    let data: Vec<TaskData> = tasks
        .iter()
        .map(|task| TaskData {
            name: task.name.clone(),
            num_classes: task.classes.len(),
            train: task_subset(train, task),
            val: task_subset(val, task),
            test: task_subset(test, task),
        })
        .collect();
    if let Some(empty) = data
        .iter()
        .find(|t| t.train.is_empty() || t.test.is_empty())
    {
        return Err(DataError::Split(format!(
            "task `{}` has no training or no test sample",
            empty.name
        )));
    }
    Ok(data)
}

/// The paper's MNIST tasks (Table 1): even digits and odd digits.
pub fn even_odd() -> Vec<ClassTask> {
    vec![
        ClassTask {
            name: "even".into(),
            classes: vec![0, 2, 4, 6, 8],
        },
        ClassTask {
            name: "odd".into(),
            classes: vec![1, 3, 5, 7, 9],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(labels: &[u8]) -> ImageSet {
        let n = labels.len();
        let images = Array3::from_shape_fn((n, 2, 2), |(i, _, _)| i as u8);
        ImageSet {
            images,
            labels: Array1::from(labels.to_vec()),
        }
    }

    #[test]
    fn even_odd_remaps_labels_and_keeps_images() {
        let train = toy(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8]);
        let test = toy(&[1, 2, 9]);
        let tasks = split_by_class(&train, &test, 10, &even_odd()).unwrap();
        let even = &tasks[0];
        assert_eq!(even.train.labels.to_vec(), vec![0, 1, 2, 3, 4]);
        // image i was filled with i: the even digits sat at positions 0, 2, 4, 6, 8
        assert_eq!(even.train.images[[3, 0, 0]], 6);
        assert_eq!(even.val.labels.to_vec(), vec![4]);
        assert_eq!(tasks[1].val.labels.to_vec(), vec![4]);
        assert_eq!(tasks[1].test.labels.to_vec(), vec![0, 4]);
        assert_eq!(even.test.labels.to_vec(), vec![1]);
    }

    #[test]
    fn overlapping_tasks_are_rejected() {
        let tasks = vec![
            ClassTask {
                name: "a".into(),
                classes: vec![1, 2],
            },
            ClassTask {
                name: "b".into(),
                classes: vec![2, 3],
            },
        ];
        let err = validate_tasks(&tasks).unwrap_err().to_string();
        assert!(err.contains("class 2"), "{err}");
    }

    #[test]
    fn oversized_train_split_is_rejected() {
        let set = toy(&[0, 1, 2]);
        assert!(split_by_class(&set, &set, 4, &even_odd()).is_err());
    }
}
