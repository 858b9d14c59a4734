//! A network with one f32 input and one f32 output, whichever engine runs it.
//!
//! Pipelines whose pre- and post-processing do not depend on the engine (OCR's detector and
//! recogniser) run their networks through [`F32Network`]: tract on the CPU, or ONNX Runtime on
//! the execution provider the device profile asks for. The input is filled in place in the
//! engine's own buffer and the output is read where the engine wrote it: no copy either side.

/// Reads a network's first output: its shape and elements, where the engine wrote them.
pub type OutputReader<'a> = dyn FnMut(&[usize], &[f32]) -> Result<(), String> + 'a;

/// Runs one network: f32 input of a given shape in, the first output out.
pub trait F32Network: Send + Sync + std::fmt::Debug {
    /// Runs the network once. `fill` writes the input (of `shape`, zeroed) in place; `read`
    /// gets the first output's shape and elements where the engine wrote them.
    fn run(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]),
        read: &mut OutputReader<'_>,
    ) -> Result<(), String>;

    /// The model's string metadata entry `key` (ONNX `metadata_props`), if it has one.
    fn metadata(&self, key: &str) -> Option<String>;

    /// The engine that runs it, as `family/device` (`tract/cpu`, `onnx/cuda`, ...).
    fn engine(&self) -> &'static str;
}
