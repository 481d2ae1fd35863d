//! TensorBoard event files: scalars and text written through the `tfrecord` crate (the
//! TFRecord framing and TensorFlow's protobuf types), flushed after every event so that a
//! TensorBoard pointed at a results folder follows the runs as they train.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tfrecord::protobuf::event::What;
use tfrecord::protobuf::summary::value::Value as ValueKind;
use tfrecord::protobuf::summary::Value;
use tfrecord::protobuf::summary_metadata::PluginData;
use tfrecord::protobuf::{
    DataType, Event, Summary, SummaryMetadata, TensorProto, TensorShapeProto,
};
use tfrecord::{EventMeta, EventWriter, EventWriterConfig};

use crate::error::{Result, TrainError};

/// The prefix TensorBoard looks for in a log folder.
pub const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// One event file being written.
pub struct EventLog {
    writer: EventWriter<BufWriter<File>>,
    path: PathBuf,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.path)
            .finish()
    }
}

impl EventLog {
    /// Starts a new event file in `dir`, removing the event files already there (a run that
    /// starts again, or resumes, rewrites its whole log).
    ///
    /// # Errors
    /// The folder cannot be created or cleared, or the file cannot be written.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        for old in event_files(dir)? {
            std::fs::remove_file(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let host = crate::grid::claim::host_name();
        let name = format!(
            "{EVENT_FILE_PREFIX}{seconds:010}.{host}.{}",
            std::process::id()
        );
        let path = dir.join(name);
        let config = EventWriterConfig { auto_flush: true };
        let writer = EventWriter::create(&path, config).map_err(|e| failed(&path, e))?;
        let mut log = Self { writer, path };
        let version = EventMeta::with_step(0).build_empty();
        log.write(Event {
            what: Some(What::FileVersion("brain.Event:2".into())),
            ..version
        })?;
        Ok(log)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes scalars (`tag`, value) at `step`, as one event.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn scalars(&mut self, step: i64, values: &[(String, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| Value {
                tag: tag.clone(),
                value: Some(ValueKind::SimpleValue(*v as f32)),
                ..Value::default()
            })
            .collect();
        self.write(EventMeta::with_step(step).build_with_summary(Summary { value }))
    }

    /// Writes `text` (markdown, as TensorBoard's text plugin shows it) under `tag` at `step`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn text(&mut self, step: i64, tag: &str, text: &str) -> Result<()> {
        let tensor = TensorProto {
            dtype: DataType::DtString as i32,
            tensor_shape: Some(TensorShapeProto::default()),
            string_val: vec![text.as_bytes().to_vec()],
            ..TensorProto::default()
        };
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".into(),
                content: Vec::new(),
            }),
            ..SummaryMetadata::default()
        };
        let value = Value {
            tag: tag.to_string(),
            metadata: Some(metadata),
            value: Some(ValueKind::Tensor(tensor)),
            ..Value::default()
        };
        let summary = Summary { value: vec![value] };
        self.write(EventMeta::with_step(step).build_with_summary(summary))
    }

    fn write(&mut self, event: Event) -> Result<()> {
        let path = &self.path;
        self.writer.write_event(event).map_err(|e| failed(path, e))
    }
}

/// The event files in `dir` (none when it does not exist), sorted by name.
///
/// # Errors
/// The folder exists but cannot be listed.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(EVENT_FILE_PREFIX))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn failed(path: &Path, error: tfrecord::Error) -> TrainError {
    TrainError::Results {
        path: path.to_path_buf(),
        problem: format!("cannot write the TensorBoard event file ({error})"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tfrecord::{EventIter, RecordReaderConfig};

    fn read(path: &Path) -> Vec<Event> {
        EventIter::open(path, RecordReaderConfig::default())
            .unwrap()
            .map(|e| e.unwrap())
            .collect()
    }

    #[test]
    fn scalars_and_text_read_back_and_a_restart_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::create(dir.path()).unwrap();
        log.scalars(1, &[("train/loss".into(), 0.5), ("val/acc".into(), 0.25)])
            .unwrap();
        log.text(0, "config", "lr = 0.01").unwrap();
        let events = read(log.path());
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0].what, Some(What::FileVersion(v)) if v == "brain.Event:2"));
        let Some(What::Summary(s)) = &events[1].what else {
            panic!("no summary: {:?}", events[1]);
        };
        assert_eq!(events[1].step, 1);
        let tags: Vec<(&str, Option<&ValueKind>)> = s
            .value
            .iter()
            .map(|v| (v.tag.as_str(), v.value.as_ref()))
            .collect();
        assert_eq!(
            tags,
            [
                ("train/loss", Some(&ValueKind::SimpleValue(0.5))),
                ("val/acc", Some(&ValueKind::SimpleValue(0.25)))
            ]
        );
        let Some(What::Summary(t)) = &events[2].what else {
            panic!("no text");
        };
        let Some(ValueKind::Tensor(tensor)) = &t.value[0].value else {
            panic!("no tensor");
        };
        assert_eq!(tensor.string_val, [b"lr = 0.01".to_vec()]);
        drop(log);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let again = EventLog::create(dir.path()).unwrap();
        assert_eq!(
            event_files(dir.path()).unwrap(),
            [again.path().to_path_buf()]
        );
    }
}
