//! `dsp_spectrum` on a file of any length in bounded memory: the mono mix is read a chunk at
//! a time; the frames that lie wholly inside the signal feed the long-term average and every
//! centred frame feeds the picture's pooled columns, each as soon as its samples are in. The
//! frames are made as [`Stft::forward`] makes them and summed in the same order, so the
//! result equals [`crate::spectrum`] on the decoded file.

use std::path::Path;

use crate::spectrum::{Pool, average, peaks};
use crate::stream::{AudioStream, CHUNK_FRAMES};
use crate::{DspError, Monitor, Result, SpectrumResult, Stft, Window};

/// Peaks of the average spectrum of the file's mono mix, and optionally a spectrogram PNG.
pub fn spectrum_file(
    path: &Path,
    n_fft: usize,
    hop: usize,
    window: Window,
    max_peaks: usize,
    image: bool,
    monitor: &dyn Monitor,
) -> Result<SpectrumResult> {
    let stft = Stft::new(n_fft, hop, window)?;
    // The picture's columns need the frame count first: a counting pass when one is drawn.
    let length = if image {
        Some(count(path, monitor)?)
    } else {
        None
    };
    let mut stream = AudioStream::open(path)?;
    let sample_rate = stream.sample_rate();
    let mut walk = Walk::new(
        &stft,
        length.map(|len| Pool::new(stft.frames_for(len), n_fft / 2 + 1)),
    );
    let mut chunk = Vec::new();
    loop {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        if stream.read(&mut chunk, CHUNK_FRAMES)? == 0 {
            break;
        }
        walk.push(&chunk);
        monitor.progress(
            stream.position() as f64,
            length.unwrap_or(0).max(stream.position() as usize) as f64,
            "reading",
        );
    }
    let len = walk.base + walk.mono.len();
    let frames = stft.frames_for(len);
    let average = if walk.whole > 0 {
        let scale = 2.0 / (stft.window_gain() * walk.whole as f64);
        walk.sum.iter().map(|s| s * scale).collect()
    } else {
        // Shorter than a whole frame: nothing was dropped, so the in-memory average applies.
        average(&stft, &stft.forward(&walk.mono), len, monitor)?
    };
    let image = match walk.pool.take() {
        Some(mut pool) => {
            walk.picture_frames(&mut pool, frames, true);
            Some(pool.draw(stft.window_gain())?)
        }
        None => None,
    };
    Ok(SpectrumResult {
        sample_rate,
        resolution_hz: f64::from(sample_rate) / n_fft as f64,
        frames,
        peaks: peaks(&average, f64::from(sample_rate) / n_fft as f64, max_peaks),
        image,
    })
}

/// Frames of the mono mix in the file (a counting pass).
fn count(path: &Path, monitor: &dyn Monitor) -> Result<usize> {
    let mut stream = AudioStream::open(path)?;
    let mut chunk = Vec::new();
    let mut total = 0usize;
    loop {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let read = stream.read(&mut chunk, CHUNK_FRAMES)?;
        if read == 0 {
            return Ok(total);
        }
        total += read;
    }
}

/// The mono mix walked frame by frame.
struct Walk<'a> {
    stft: &'a Stft,
    /// Mono samples from signal index `base`.
    mono: Vec<f32>,
    base: usize,
    /// Start of the next frame wholly inside the signal, and how many were summed.
    next_whole: usize,
    whole: usize,
    sum: Vec<f64>,
    /// The next centred frame for the picture.
    next_picture: usize,
    pool: Option<Pool>,
    buffers: (
        Vec<f32>,
        Vec<realfft::num_complex::Complex32>,
        Vec<realfft::num_complex::Complex32>,
    ),
    padded: Vec<f32>,
}

impl<'a> Walk<'a> {
    fn new(stft: &'a Stft, pool: Option<Pool>) -> Walk<'a> {
        let (half, hop) = (stft.n_fft() / 2, stft.hop());
        // The first frame wholly inside: frame ⌈half / hop⌉, starting at that · hop − half.
        let first = half.div_ceil(hop) * hop - half;
        Walk {
            stft,
            mono: Vec::new(),
            base: 0,
            next_whole: first,
            whole: 0,
            sum: vec![0.0; stft.n_fft() / 2 + 1],
            next_picture: 0,
            pool,
            buffers: stft.frame_buffers(),
            padded: vec![0.0; stft.n_fft()],
        }
    }

    /// Mix `chunk` (one `Vec` per channel) into mono as `Audio::mono` does, then take every
    /// frame it completes.
    fn push(&mut self, chunk: &[Vec<f32>]) {
        crate::audio::mix_into(&mut self.mono, chunk);
        let n_fft = self.stft.n_fft();
        let (input, output, scratch) = &mut self.buffers;
        while self.next_whole + n_fft <= self.base + self.mono.len() {
            let at = self.next_whole - self.base;
            self.stft
                .frame_into(&self.mono[at..at + n_fft], input, output, scratch);
            for (slot, value) in self.sum.iter_mut().zip(output.iter()) {
                *slot += crate::spectrum::magnitude(value);
            }
            self.whole += 1;
            self.next_whole += self.stft.hop();
        }
        if let Some(mut pool) = self.pool.take() {
            self.picture_frames(&mut pool, usize::MAX, false);
            self.pool = Some(pool);
        }
        // Drop what no frame still needs (everything is kept until a whole frame was taken:
        // a short signal is measured from all of it).
        if self.whole > 0 {
            let half = n_fft / 2;
            let picture_start = (self.next_picture * self.stft.hop()).saturating_sub(half);
            let keep = if self.pool.is_some() {
                self.next_whole.min(picture_start)
            } else {
                self.next_whole
            };
            let drop = keep.saturating_sub(self.base).min(self.mono.len());
            self.mono.drain(..drop);
            self.base += drop;
        }
    }

    /// Pool the centred frames (up to `frames`) whose samples are all in — or, at the `end`,
    /// padded with zeros past the signal.
    fn picture_frames(&mut self, pool: &mut Pool, frames: usize, end: bool) {
        let (n_fft, hop) = (self.stft.n_fft(), self.stft.hop());
        let half = n_fft / 2;
        let available = self.base + self.mono.len();
        let (input, output, scratch) = &mut self.buffers;
        while self.next_picture < frames {
            let start = (self.next_picture * hop) as isize - half as isize;
            if !end && start + n_fft as isize > available as isize {
                break;
            }
            for (k, slot) in self.padded.iter_mut().enumerate() {
                let at = start + k as isize;
                *slot = if at >= self.base as isize && (at as usize) < available {
                    self.mono[at as usize - self.base]
                } else {
                    0.0
                };
            }
            self.stft.frame_into(&self.padded, input, output, scratch);
            pool.add(self.next_picture, output);
            self.next_picture += 1;
        }
    }
}
