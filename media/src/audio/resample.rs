//! Band-limited resampling (rubato): FFT-based synchronous resampling for the usual rate
//! pairs, windowed-sinc asynchronous resampling when the two rates share no useful factor.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};
use switchyard_core::tensor::DType;
use switchyard_core::{BufferAlloc, Tensor, TensorError};
use tracing::debug_span;

use crate::MediaError;

/// Input frames per resampler call.
const CHUNK: usize = 1024;
/// Largest reduced input rate (`from / gcd(from, to)`) handled by the FFT resampler; above it
/// the FFT would be too long and the sinc resampler is used.
const MAX_FFT_FACTOR: u32 = 4096;
/// Highest rate accepted (well above any real audio).
const MAX_RATE: u32 = 1_000_000;

fn check_rate(rate: u32) -> Result<(), MediaError> {
    if rate == 0 || rate > MAX_RATE {
        return Err(MediaError::InvalidSampleRate { rate });
    }
    Ok(())
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Output length of `frames` input frames: `ceil(frames × to / from)`, in exact integers
/// (rubato's float ratio can round one frame up).
fn output_len(frames: usize, from: u32, to: u32) -> usize {
    let n = (frames as u128 * u128::from(to)).div_ceil(u128::from(from));
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn resample_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::Resample(e.to_string())
}

/// A mono resampler from `from` Hz to `to` Hz.
fn resampler(from: u32, to: u32) -> Result<Box<dyn Resampler<f32>>, MediaError> {
    if from / gcd(from, to) <= MAX_FFT_FACTOR {
        let r = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
            .map_err(resample_err)?;
        return Ok(Box::new(r));
    }
    let params = SincInterpolationParameters {
        sinc_len: 256,
        f_cutoff: None,
        interpolation: SincInterpolationType::Cubic,
        oversampling_factor: 256,
        window: WindowFunction::BlackmanHarris2,
    };
    let r = Async::<f32>::new_sinc(
        f64::from(to) / f64::from(from),
        1.0,
        &params,
        CHUNK,
        1,
        FixedAsync::Input,
    )
    .map_err(resample_err)?;
    Ok(Box::new(r))
}

/// Resamples mono `samples` from `from` Hz to `to` Hz into a new vector (length
/// `ceil(len × to / from)`, the resampler's delay already removed). Equal rates copy.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, MediaError> {
    let span = debug_span!("media.audio.resample", from, to, frames = samples.len());
    let _guard = span.enter();
    check_rate(from)?;
    check_rate(to)?;
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(resample_err)?;
    let out = resampler(from, to)?
        .process_all(&input, samples.len(), None)
        .map_err(resample_err)?;
    let mut out = out.take_data();
    out.truncate(output_len(samples.len(), from, to));
    Ok(out)
}

/// Resamples mono `samples` from `from` Hz to `to` Hz straight into an f32 `[n]` tensor from
/// `alloc` (the resampler writes its output in place; the buffer is a few thousand samples
/// longer than the tensor, the resampler's working margin). Equal rates copy once.
pub fn resample_into(
    samples: &[f32],
    from: u32,
    to: u32,
    alloc: &dyn BufferAlloc,
) -> Result<Tensor, MediaError> {
    let span = debug_span!(
        "media.audio.resample_into",
        from,
        to,
        frames = samples.len()
    );
    let _guard = span.enter();
    check_rate(from)?;
    check_rate(to)?;
    if from == to || samples.is_empty() {
        return Ok(Tensor::build::<f32>(alloc, &[samples.len()], |out| {
            out.copy_from_slice(samples)
        })?);
    }
    let mut r = resampler(from, to)?;
    let needed = r.process_all_needed_output_len(samples.len());
    let mut buffer = alloc
        .alloc(needed * std::mem::size_of::<f32>())
        .map_err(TensorError::Alloc)?;
    let out: &mut [f32] =
        bytemuck::try_cast_slice_mut(buffer.bytes_mut()).map_err(|_| TensorError::NotContiguous)?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(resample_err)?;
    let mut output = InterleavedSlice::new_mut(out, 1, needed).map_err(resample_err)?;
    let (_, produced) = r
        .process_all_into_buffer(&input, &mut output, samples.len(), None)
        .map_err(resample_err)?;
    Ok(Tensor::from_storage(
        buffer.into_storage(),
        DType::F32,
        &[produced.min(output_len(samples.len(), from, to))],
        &[1],
        0,
    )?)
}
