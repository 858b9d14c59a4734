//! The Hugging Face weights: one `model.safetensors`, or the shards that
//! `model.safetensors.index.json` names, memory-mapped and checked with the `safetensors`
//! crate (header, offsets, and that the data covers the file exactly, so a truncated file is
//! refused before anything is written).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};
use safetensors::{Dtype, SafeTensors};

use super::HfGgufError;

/// Where one tensor lies.
#[derive(Debug, Clone)]
pub(crate) struct SourceTensor {
    /// Index into [`Source::files`].
    pub file: usize,
    /// Element type in the file.
    pub dtype: Dtype,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Byte range in the mapped file.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

/// The memory-mapped safetensors files of a model folder.
pub(crate) struct Source {
    /// Each file and its mapping.
    pub files: Vec<(PathBuf, Mmap)>,
    /// Every tensor by its Hugging Face name.
    pub tensors: BTreeMap<String, SourceTensor>,
}

const INDEX: &str = "model.safetensors.index.json";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HfGgufError + '_ {
    move |error| HfGgufError::Io {
        path: path.to_owned(),
        error,
    }
}

impl Source {
    /// Maps and validates the weight files of `dir`.
    pub fn open(dir: &Path) -> Result<Self, HfGgufError> {
        let index_path = dir.join(INDEX);
        let (names, weight_map) = if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(io_error(&index_path))?;
            let index: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| HfGgufError::Config {
                    path: index_path.clone(),
                    reason: format!("not valid JSON: {e}"),
                })?;
            let map = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| HfGgufError::Config {
                    path: index_path.clone(),
                    reason: "has no \"weight_map\" object".into(),
                })?;
            let mut weight_map = BTreeMap::new();
            for (tensor, file) in map {
                let file = file.as_str().ok_or_else(|| HfGgufError::Config {
                    path: index_path.clone(),
                    reason: format!("weight_map entry for {tensor} is not a file name"),
                })?;
                if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                    return Err(HfGgufError::Config {
                        path: index_path.clone(),
                        reason: format!("shard name {file:?} is not a plain file name"),
                    });
                }
                weight_map.insert(tensor.clone(), file.to_owned());
            }
            let names: BTreeSet<String> = weight_map.values().cloned().collect();
            (names.into_iter().collect::<Vec<_>>(), Some(weight_map))
        } else {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
                let entry = entry.map_err(io_error(dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".safetensors") && !name.starts_with('.') {
                    names.push(name);
                }
            }
            names.sort();
            (names, None)
        };
        if names.is_empty() {
            return Err(HfGgufError::MissingWeights {
                path: dir.to_owned(),
            });
        }

        let mut files = Vec::with_capacity(names.len());
        let mut tensors = BTreeMap::new();
        for name in names {
            let path = dir.join(&name);
            let file = File::open(&path).map_err(io_error(&path))?;
            let len = file.metadata().map_err(io_error(&path))?.len();
            if len < 8 {
                return Err(HfGgufError::Safetensors {
                    path,
                    reason: format!("file is {len} bytes, shorter than its 8-byte header length"),
                });
            }
            // SAFETY: the file is opened read-only and the converter expects nobody to modify
            // the source while it runs (the same contract as every mmap-based model loader).
            let mmap = unsafe { Mmap::map(&file) }.map_err(io_error(&path))?;
            let (header_len, metadata) =
                SafeTensors::read_metadata(&mmap).map_err(|e| HfGgufError::Safetensors {
                    path: path.clone(),
                    reason: describe_safetensors_error(&e, len),
                })?;
            let data_start = 8 + header_len;
            let index = files.len();
            for (tensor, info) in metadata.tensors() {
                if let Some(previous) = tensors.get(&tensor).map(|t: &SourceTensor| t.file) {
                    let first: &(PathBuf, Mmap) = &files[previous];
                    return Err(HfGgufError::Safetensors {
                        path,
                        reason: format!("tensor {tensor} is also stored in {}", first.0.display()),
                    });
                }
                tensors.insert(
                    tensor,
                    SourceTensor {
                        file: index,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start: data_start + info.data_offsets.0,
                        end: data_start + info.data_offsets.1,
                    },
                );
            }
            // Read front to back once: tell the kernel to read ahead.
            let _ = mmap.advise(memmap2::Advice::Sequential);
            files.push((path, mmap));
        }
        if let Some(weight_map) = weight_map {
            for (tensor, file) in &weight_map {
                let found = tensors.get(tensor).map(|t| &files[t.file].0);
                if found.and_then(|p| p.file_name()) != Some(std::ffi::OsStr::new(file)) {
                    return Err(HfGgufError::Safetensors {
                        path: dir.join(file),
                        reason: format!("{INDEX} says it holds tensor {tensor}, but it does not"),
                    });
                }
            }
        }
        Ok(Self { files, tensors })
    }

    /// The file a tensor lives in.
    pub fn path_of(&self, tensor: &SourceTensor) -> &Path {
        &self.files[tensor.file].0
    }

    /// The tensor's raw little-endian bytes.
    pub fn bytes(&self, tensor: &SourceTensor) -> &[u8] {
        &self.files[tensor.file].1[tensor.start..tensor.end]
    }

    /// Drops the tensor's pages from this process once converted, so resident memory stays
    /// near one tensor rather than growing to the whole model (the page cache keeps them).
    pub fn release(&self, tensor: &SourceTensor) {
        self.release_range(tensor, 0, tensor.end - tensor.start);
    }

    /// [`release`](Self::release) for the bytes `from..to` of the tensor's data.
    pub fn release_range(&self, tensor: &SourceTensor, from: usize, to: usize) {
        let mmap = &self.files[tensor.file].1;
        let page = 4096;
        let start = (tensor.start + from) / page * page;
        let end = (tensor.start + to).min(tensor.end).min(mmap.len());
        if end > start {
            // SAFETY: the mapping is read-only and file-backed, and no slice of these pages is
            // held past this point (the caller finished with the tensor's bytes); pages touched
            // again are read back from the file, so MADV_DONTNEED cannot change what is read.
            let _ = unsafe {
                mmap.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }

    /// Total bytes of the weight files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|(_, m)| m.len() as u64).sum()
    }
}

fn describe_safetensors_error(error: &safetensors::SafeTensorError, len: u64) -> String {
    use safetensors::SafeTensorError as E;
    match error {
        E::MetadataIncompleteBuffer => format!(
            "truncated or padded: the header's tensors do not end at the file's end ({len} bytes)"
        ),
        E::InvalidHeaderLength => {
            format!("truncated: the header length runs past the end of the file ({len} bytes)")
        }
        E::InvalidHeaderDeserialization(e) => format!("corrupt header (not valid JSON: {e})"),
        E::InvalidHeader(e) => format!("corrupt header (not UTF-8: {e})"),
        other => format!("corrupt safetensors data: {other}"),
    }
}
