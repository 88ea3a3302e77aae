//! Checkpoints: one self-describing file per checkpoint, written atomically.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! b"METALRN\x01"                      magic + layout version
//! u64 n, n bytes                      header: JSON CheckpointHeader
//! u64 n, n bytes                      meta-parameters: burn record, named MessagePack, f32 exact
//! u64 n, n bytes                      outer-optimizer state: burn record, same format (may be empty)
//! u64                                 FNV-1a 64 checksum of every byte before it
//! ```
//!
//! The header names the algorithm, backbone, configs, outer optimizer, the name and shape of every
//! parameter, the iteration, the sampler position and the best validation so far. Loading refuses
//! a checkpoint whose algorithm, backbone, optimizer or parameter shapes differ from the run's,
//! naming both; a truncated or corrupted file is reported as such (length and checksum checks)
//! before anything is decoded. Files are written to a temporary sibling, fsynced and renamed over
//! the target, so a crash leaves either the old or the new checkpoint, never a torn one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::{Bool, Int, Tensor, backend::AutodiffBackend, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::learner::MetaLearner;

const MAGIC: &[u8; 8] = b"METALRN\x01";
/// Version of the header schema written by this crate.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// Name and shape of one parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamShape {
    /// Dotted path, e.g. `net.conv1.weight`.
    pub name: String,
    /// Tensor shape.
    pub shape: Vec<usize>,
}

/// Best validation accuracy seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestValidation {
    /// Number of completed iterations when it was measured.
    pub iteration: u64,
    /// Mean validation accuracy in `[0, 1]`.
    pub mean: f64,
    /// 95% CI half-width.
    pub ci95: f64,
}

/// The JSON header of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// Header schema version ([`CHECKPOINT_FORMAT`]).
    pub format: u32,
    /// [`MetaLearner::name`].
    pub algorithm: String,
    /// [`MetaLearner::backbone_name`].
    pub backbone: String,
    /// [`MetaLearner::config_json`].
    pub algorithm_config: serde_json::Value,
    /// The trainer configuration (`null` for a model-only checkpoint).
    pub trainer_config: serde_json::Value,
    /// Outer optimizer whose state follows (`"adam"`, `"sgd"`, or `"none"`).
    pub optimizer: String,
    /// Every parameter of the meta-model, in visiting order.
    pub params: Vec<ParamShape>,
    /// Completed meta-iterations.
    pub iteration: u64,
    /// Index of the next training episode (`iteration × meta_batch`).
    pub sampler_position: u64,
    /// Best validation so far.
    pub best_validation: Option<BestValidation>,
}

impl CheckpointHeader {
    /// A header for `model` of `learner` with the given training state.
    pub fn describe<B, L>(learner: &L, model: &L::Model) -> Self
    where
        B: AutodiffBackend,
        L: MetaLearner<B>,
    {
        Self {
            format: CHECKPOINT_FORMAT,
            algorithm: learner.name().to_string(),
            backbone: learner.backbone_name(),
            algorithm_config: learner.config_json(),
            trainer_config: serde_json::Value::Null,
            optimizer: "none".into(),
            params: param_shapes::<B, _>(model),
            iteration: 0,
            sampler_position: 0,
            best_validation: None,
        }
    }

    fn identity(&self) -> String {
        format!(
            "algorithm `{}` with backbone `{}`",
            self.algorithm, self.backbone
        )
    }

    /// Refuses `found` (read from `path`) unless it has this header's algorithm, backbone and
    /// parameter shapes (and outer optimizer, when `check_optimizer`).
    pub fn check_matches(
        &self,
        found: &CheckpointHeader,
        path: &Path,
        check_optimizer: bool,
    ) -> Result<()> {
        let mismatch = |expected: String, found: String| AlgoError::CheckpointMismatch {
            path: path.to_path_buf(),
            expected,
            found,
        };
        if found.format != CHECKPOINT_FORMAT {
            return Err(mismatch(
                format!("checkpoint format {CHECKPOINT_FORMAT}"),
                format!("checkpoint format {}", found.format),
            ));
        }
        if self.algorithm != found.algorithm || self.backbone != found.backbone {
            return Err(mismatch(self.identity(), found.identity()));
        }
        if check_optimizer && self.optimizer != found.optimizer {
            return Err(mismatch(
                format!("outer optimizer `{}`", self.optimizer),
                format!("outer optimizer `{}`", found.optimizer),
            ));
        }
        if self.params != found.params {
            let describe = |p: Option<&ParamShape>| match p {
                Some(p) => format!("parameter `{}` of shape {:?}", p.name, p.shape),
                None => "no such parameter".to_string(),
            };
            let n = self.params.len().max(found.params.len());
            let i = (0..n)
                .find(|&i| self.params.get(i) != found.params.get(i))
                .unwrap_or(0);
            return Err(mismatch(
                format!(
                    "{} with {} ({} parameters)",
                    self.identity(),
                    describe(self.params.get(i)),
                    self.params.len()
                ),
                format!(
                    "{} with {} ({} parameters)",
                    found.identity(),
                    describe(found.params.get(i)),
                    found.params.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Names and shapes of every parameter of `model`, in visiting order. Reading each parameter
/// also forces lazily initialised parameters to materialise.
pub fn param_shapes<B: Backend, M: Module<B>>(model: &M) -> Vec<ParamShape> {
    struct Shapes {
        path: Vec<String>,
        out: Vec<ParamShape>,
    }
    impl Shapes {
        fn push(&mut self, shape: Vec<usize>) {
            self.out.push(ParamShape {
                name: self.path.join("."),
                shape,
            });
        }
    }
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.push(param.val().dims().to_vec());
        }
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
            self.push(param.val().dims().to_vec());
        }
        fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
            self.push(param.val().dims().to_vec());
        }
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
    }
    let mut v = Shapes {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut v);
    v.out
}

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Encodes a burn record (module or optimizer state) to bytes, f32 values bit-exact.
pub fn record_to_bytes<B: Backend, R: Record<B>>(record: R) -> Result<Vec<u8>> {
    Rec::default()
        .record(record, ())
        .map_err(|e| AlgoError::InvalidConfig(format!("could not encode record: {e}")))
}

/// Decodes a burn record written by [`record_to_bytes`]; `path` only names the file in errors.
pub fn record_from_bytes<B: Backend, R: Record<B>>(
    bytes: Vec<u8>,
    device: &B::Device,
    path: &Path,
) -> Result<R> {
    Recorder::<B>::load(&Rec::default(), bytes, device).map_err(|e| AlgoError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason: format!("record does not decode: {e}"),
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes a checkpoint file atomically (temporary sibling, fsync, rename, directory fsync).
pub fn write_checkpoint_file(
    path: &Path,
    header: &CheckpointHeader,
    model: &[u8],
    optimizer: &[u8],
) -> Result<()> {
    let io = |source| AlgoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let header = serde_json::to_vec_pretty(header)
        .map_err(|e| AlgoError::InvalidConfig(format!("checkpoint header: {e}")))?;
    let mut buf = Vec::with_capacity(40 + header.len() + model.len() + optimizer.len());
    buf.extend_from_slice(MAGIC);
    for part in [&header[..], model, optimizer] {
        buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
        buf.extend_from_slice(part);
    }
    let sum = fnv1a(&buf);
    buf.extend_from_slice(&sum.to_le_bytes());

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself; not every platform can open a directory, so best effort.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The three parts of a checkpoint file, verified (magic, lengths, checksum) but not decoded.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    /// The decoded header.
    pub header: CheckpointHeader,
    /// Encoded meta-parameters.
    pub model: Vec<u8>,
    /// Encoded optimizer state (empty for model-only checkpoints).
    pub optimizer: Vec<u8>,
}

/// Reads and verifies a checkpoint file.
pub fn read_checkpoint_file(path: &Path) -> Result<CheckpointFile> {
    let bytes = std::fs::read(path).map_err(|source| AlgoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |reason: String| AlgoError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            "not a metalearn checkpoint (bad magic bytes)".into(),
        ));
    }
    if bytes.len() < MAGIC.len() + 8 * 4 {
        return Err(corrupt(format!("truncated: only {} bytes", bytes.len())));
    }
    let body_len = bytes.len() - 8;
    let mut sum_bytes = [0u8; 8];
    sum_bytes.copy_from_slice(&bytes[body_len..]);
    let mut pos = MAGIC.len();
    let mut parts = Vec::with_capacity(3);
    for what in ["header", "meta-parameters", "optimizer state"] {
        if pos + 8 > body_len {
            return Err(corrupt(format!("truncated before the {what} length")));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[pos..pos + 8]);
        let len = u64::from_le_bytes(len);
        pos += 8;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= body_len)
            .ok_or_else(|| {
                corrupt(format!(
                    "truncated: the {what} claims {len} bytes, the file has {} left",
                    body_len.saturating_sub(pos)
                ))
            })?;
        parts.push(bytes[pos..end].to_vec());
        pos = end;
    }
    if pos != body_len {
        return Err(corrupt(format!(
            "{} unexpected bytes after the optimizer state",
            body_len - pos
        )));
    }
    if fnv1a(&bytes[..body_len]) != u64::from_le_bytes(sum_bytes) {
        return Err(corrupt(
            "checksum mismatch (file was modified or damaged)".into(),
        ));
    }
    let optimizer = parts.pop().unwrap_or_default();
    let model = parts.pop().unwrap_or_default();
    let header_bytes = parts.pop().unwrap_or_default();
    let header: CheckpointHeader = serde_json::from_slice(&header_bytes)
        .map_err(|e| corrupt(format!("header is not valid JSON: {e}")))?;
    Ok(CheckpointFile {
        header,
        model,
        optimizer,
    })
}

/// Reads only what a checkpoint says about itself (for `metalearn` listings, resumption checks).
pub fn read_header(path: &Path) -> Result<CheckpointHeader> {
    Ok(read_checkpoint_file(path)?.header)
}

/// Saves `model` of `learner` as a model-only checkpoint (no optimizer state).
pub fn save_model<B, L>(learner: &L, model: &L::Model, path: &Path) -> Result<()>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    let header = CheckpointHeader::describe::<B, L>(learner, model);
    let bytes = record_to_bytes::<B, _>(model.clone().into_record())?;
    write_checkpoint_file(path, &header, &bytes, &[])
}

/// Loads the meta-parameters of any checkpoint (trainer or model-only) for `learner`, refusing
/// one of another algorithm, backbone or shape. Returns the model and the checkpoint's header.
pub fn load_model<B, L>(
    learner: &L,
    path: &Path,
    device: &B::Device,
) -> Result<(L::Model, CheckpointHeader)>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    let file = read_checkpoint_file(path)?;
    let fresh = learner.init_model(device);
    let expected = CheckpointHeader::describe::<B, L>(learner, &fresh);
    expected.check_matches(&file.header, path, false)?;
    let record = record_from_bytes::<B, <L::Model as Module<B>>::Record>(file.model, device, path)?;
    Ok((fresh.load_record(record), file.header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TB, param_values, tiny_factory};
    use crate::{
        MatchingNet, MatchingNetConfig, OuterOptimizer, ProtoNet, ProtoNetConfig, Trainer,
        TrainerConfig,
    };

    fn saved_protonet(dir: &Path) -> PathBuf {
        let path = dir.join("ckpt").join("latest.ckpt");
        let learner = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let trainer =
            Trainer::new(learner, TrainerConfig::default(), &Default::default()).expect("trainer");
        trainer.save_checkpoint(&path).expect("save");
        path
    }

    fn err_text<T>(r: Result<T>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn checkpoint_of_another_algorithm_is_refused_naming_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = saved_protonet(dir.path());
        let other = MatchingNet::new(tiny_factory(8), MatchingNetConfig::default()).expect("cfg");
        let e = err_text(Trainer::resume(
            other,
            TrainerConfig::default(),
            &Default::default(),
            &path,
        ));
        assert!(
            e.contains("`protonet`") && e.contains("`matchingnet`"),
            "{e}"
        );
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn checkpoint_of_another_backbone_or_shape_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = saved_protonet(dir.path());
        // Same algorithm, another backbone name.
        let other = ProtoNet::new(tiny_factory(16), ProtoNetConfig::default());
        let e = err_text(load_model::<TB, _>(&other, &path, &Default::default()));
        assert!(e.contains("tiny-8") && e.contains("tiny-16"), "{e}");
        // Same names, other shapes.
        let renamed = crate::FnFactory::new("tiny-8", |d| {
            crate::test_util::TinyNet::<TB>::new(16, 9, 3, d)
        });
        let e = err_text(load_model::<TB, _>(
            &ProtoNet::new(renamed, ProtoNetConfig::default()),
            &path,
            &Default::default(),
        ));
        assert!(
            e.contains("[16, 8]") && e.contains("[16, 9]") && e.contains("w1"),
            "{e}"
        );
    }

    #[test]
    fn checkpoint_of_another_outer_optimizer_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = saved_protonet(dir.path());
        let config = TrainerConfig {
            optimizer: OuterOptimizer::Sgd,
            ..TrainerConfig::default()
        };
        let learner = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let e = err_text(Trainer::resume(learner, config, &Default::default(), &path));
        assert!(e.contains("`adam`") && e.contains("`sgd`"), "{e}");
    }

    #[test]
    fn truncated_or_damaged_checkpoint_gives_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = saved_protonet(dir.path());
        let bytes = std::fs::read(&path).expect("read");
        let learner = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let load = |p: &Path| err_text(load_model::<TB, _>(&learner, p, &Default::default()));

        let cut = dir.path().join("cut.ckpt");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let e = load(&cut);
        assert!(e.contains("truncated") && e.contains("cut.ckpt"), "{e}");

        let mut flipped = bytes.clone();
        let mid = flipped.len() - 100;
        flipped[mid] ^= 0x55;
        let bad = dir.path().join("flipped.ckpt");
        std::fs::write(&bad, &flipped).expect("write");
        assert!(load(&bad).contains("checksum"));

        let junk = dir.path().join("junk.ckpt");
        std::fs::write(&junk, b"hello").expect("write");
        assert!(load(&junk).contains("not a metalearn checkpoint"));

        let e = load(&dir.path().join("missing.ckpt"));
        assert!(e.contains("missing.ckpt"), "{e}");
    }

    #[test]
    fn model_checkpoint_round_trips_parameters_exactly_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let learner = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let device = Default::default();
        let model = MetaLearner::<TB>::init_model(&learner, &device);
        let path = dir.path().join("m.ckpt");
        save_model::<TB, _>(&learner, &model, &path).expect("save");
        save_model::<TB, _>(&learner, &model, &path).expect("overwrite");
        let (loaded, header) = load_model::<TB, _>(&learner, &path, &device).expect("load");
        assert_eq!(
            param_values::<TB, _>(&model),
            param_values::<TB, _>(&loaded)
        );
        assert_eq!(header.algorithm, "protonet");
        assert_eq!(header.params.len(), 3);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["m.ckpt".to_string()]);
    }
}
