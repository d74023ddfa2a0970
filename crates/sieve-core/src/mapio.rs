//! Reading and writing anomaly maps made by any detector: NumPy `.npy` (float32, or float64
//! converted to float32), 32-bit float TIFF, and 8- or 16-bit grayscale PNG scaled to `0..=1`.
//!
//! Files are recognised by their first bytes, not their extension. Writing goes to a
//! temporary file in the destination folder, renamed into place once complete, so readers
//! never see a partial map.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

use crate::imageio::{size_is_accepted, MAX_PIXELS, MAX_SIDE};
use crate::map::AnomalyMap;

/// File format of an anomaly map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapFormat {
    /// NumPy `.npy`, float32 with shape `(height, width)`.
    Npy,
    /// Single-channel 32-bit float TIFF.
    Tiff,
    /// 8-bit grayscale PNG, with scores clamped to `0..=1` and quantised to 256 levels.
    Png8,
    /// 16-bit grayscale PNG, with scores clamped to `0..=1` and quantised to 65536 levels.
    Png16,
}

impl MapFormat {
    /// Every format, in the order of the enum.
    pub const ALL: [MapFormat; 4] = [
        MapFormat::Npy,
        MapFormat::Tiff,
        MapFormat::Png8,
        MapFormat::Png16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MapFormat::Npy => "npy",
            MapFormat::Tiff => "tiff",
            MapFormat::Png8 => "png8",
            MapFormat::Png16 => "png16",
        }
    }

    /// File extension, without the dot, that the format is written with.
    pub fn extension(self) -> &'static str {
        match self {
            MapFormat::Npy => "npy",
            MapFormat::Tiff => "tiff",
            MapFormat::Png8 | MapFormat::Png16 => "png",
        }
    }

    /// Chooses the format to write `path` in from its extension, in any letter case: `npy`,
    /// `tif` or `tiff`, and `png` (16-bit, the finer of the two PNG depths).
    pub fn from_path(path: &Path) -> Result<MapFormat, MapIoError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("npy") => Ok(MapFormat::Npy),
            Some("tif" | "tiff") => Ok(MapFormat::Tiff),
            Some("png") => Ok(MapFormat::Png16),
            _ => Err(MapIoError::UnknownExtension {
                path: path.to_owned(),
            }),
        }
    }
}

impl fmt::Display for MapFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MapIoError {
    #[error(
        "failed to read anomaly map {path}: {source}; check that the file exists and is readable"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write anomaly map {path}: {source}; check that its folder exists and is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("anomaly map {path} is not a .npy, TIFF or PNG file (it starts with bytes {start:02x?}); save the map as float32 .npy, 32-bit float TIFF or grayscale PNG")]
    UnknownFormat { path: PathBuf, start: Vec<u8> },
    #[error("anomaly map path {path} has no known extension; use .npy, .tif, .tiff or .png")]
    UnknownExtension { path: PathBuf },
    #[error("failed to decode anomaly map {path} as {format}: {message}; the file is damaged or truncated, so export it again")]
    Decode {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("failed to encode anomaly map {path} as {format}: {message}")]
    Encode {
        path: PathBuf,
        format: MapFormat,
        message: String,
    },
    #[error("anomaly map {path} has dtype {dtype}; expected float32 ('<f4') or float64 ('<f8'), so convert it with `array.astype(numpy.float32)` before saving")]
    Dtype { path: PathBuf, dtype: String },
    #[error("anomaly map {path} has shape {shape:?}; expected (height, width), (1, height, width) or (height, width, 1), so squeeze the array or select one channel before saving")]
    Shape { path: PathBuf, shape: Vec<u64> },
    #[error("anomaly map {path} is {width}x{height}; sides must be between 1 and {MAX_SIDE} pixels and the pixel count at most {MAX_PIXELS}, as for images, so crop or resize the map")]
    Size {
        path: PathBuf,
        width: u64,
        height: u64,
    },
    #[error("anomaly map {path} contains {value} at (x={x}, y={y}); scores must be finite, so replace NaN and infinite values (for example with numpy.nan_to_num) before saving")]
    NonFinite {
        path: PathBuf,
        x: usize,
        y: usize,
        value: f64,
    },
    #[error("TIFF anomaly map {path} holds {found}; expected one 32-bit float channel, so save it as a single-channel float32 TIFF")]
    TiffSamples { path: PathBuf, found: String },
    #[error("PNG anomaly map {path} is {found}; expected 8- or 16-bit grayscale, so convert it to grayscale")]
    PngColor { path: PathBuf, found: String },
}

/// Reads an anomaly map and the format it was stored in.
///
/// A `.npy` file may be float32 or float64, of shape `(height, width)`, `(1, height, width)`
/// or `(height, width, 1)`, in C or Fortran order. A TIFF file must have one float32 or float64
/// channel. A PNG file must be 8- or 16-bit grayscale, and its values are divided by 255 or
/// 65535. Every score must be finite.
pub fn read_map(path: impl AsRef<Path>) -> Result<(AnomalyMap, MapFormat), MapIoError> {
    let path = path.as_ref();
    let read_error = |source| MapIoError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let length = file.metadata().map_err(read_error)?.len();
    decode(path, BufReader::new(file), length)
}

/// Decodes an anomaly map from the bytes of a file, as [`read_map`] does; `path` only names
/// the map in errors.
pub fn decode_map(
    path: impl AsRef<Path>,
    bytes: &[u8],
) -> Result<(AnomalyMap, MapFormat), MapIoError> {
    decode(path.as_ref(), Cursor::new(bytes), bytes.len() as u64)
}

/// Decodes a map from `reader`, which contains `length` bytes.
fn decode<R: BufRead + Seek>(
    path: &Path,
    mut reader: R,
    length: u64,
) -> Result<(AnomalyMap, MapFormat), MapIoError> {
    let read_error = |source| MapIoError::Read {
        path: path.to_owned(),
        source,
    };
    let mut start = Vec::with_capacity(8);
    (&mut reader)
        .take(8)
        .read_to_end(&mut start)
        .map_err(read_error)?;
    reader.seek(SeekFrom::Start(0)).map_err(read_error)?;

    let (map, format) = if start.starts_with(b"\x93NUMPY") {
        check_npy_header(path, &mut reader)?;
        reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
        (read_npy(path, reader, length)?, MapFormat::Npy)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| start.starts_with(*magic))
    {
        (read_tiff(path, reader)?, MapFormat::Tiff)
    } else if start.starts_with(b"\x89PNG\r\n\x1a\n") {
        read_png(path, reader)?
    } else {
        return Err(MapIoError::UnknownFormat {
            path: path.to_owned(),
            start,
        });
    };

    check_finite(path, &map)?;
    Ok((map, format))
}

/// Writes `map` in `format`, replacing `path` only once the new file is complete.
///
/// PNG output clamps scores to `0..=1` and rounds them to the nearest level, so it loses
/// precision. `.npy` and TIFF store the float32 scores exactly.
pub fn write_map(
    path: impl AsRef<Path>,
    map: &AnomalyMap,
    format: MapFormat,
) -> Result<(), MapIoError> {
    let path = path.as_ref();
    check_size(path, map.width as u64, map.height as u64)?;
    check_finite(path, map)?;

    let temporary = temporary_path(path);
    let result = write_to(&temporary, path, map, format).and_then(|()| {
        fs::rename(&temporary, path).map_err(|source| MapIoError::Write {
            path: path.to_owned(),
            source,
        })
    });
    if result.is_err() {
        // The temporary file may not exist when creating it failed, so a removal error means
        // nothing here.
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Returns a path for a new file beside `path`, unique within this process.
fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

fn write_to(
    temporary: &Path,
    path: &Path,
    map: &AnomalyMap,
    format: MapFormat,
) -> Result<(), MapIoError> {
    let write_error = |source| MapIoError::Write {
        path: path.to_owned(),
        source,
    };
    let encode_error = |message: String| MapIoError::Encode {
        path: path.to_owned(),
        format,
        message,
    };

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temporary)
        .map_err(write_error)?;
    let mut writer = BufWriter::new(file);
    let (width, height) = (map.width, map.height);

    match format {
        MapFormat::Npy => {
            use npyz::WriterBuilder;
            let mut npy = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&[height as u64, width as u64])
                .writer(&mut writer)
                .begin_nd()
                .map_err(write_error)?;
            npy.extend(map.data.iter().copied()).map_err(write_error)?;
            npy.finish().map_err(write_error)?;
        }
        MapFormat::Tiff => {
            let mut encoder = tiff::encoder::TiffEncoder::new(&mut writer)
                .map_err(|e| encode_error(e.to_string()))?;
            encoder
                .write_image::<tiff::encoder::colortype::Gray32Float>(
                    width as u32,
                    height as u32,
                    &map.data,
                )
                .map_err(|e| encode_error(e.to_string()))?;
        }
        MapFormat::Png8 => {
            let levels = quantise(map, u8::MAX as f32).map(|v| v as u8).collect();
            let image: ImageBuffer<Luma<u8>, Vec<u8>> =
                ImageBuffer::from_raw(width as u32, height as u32, levels)
                    .expect("one level per map pixel");
            image
                .write_with_encoder(PngEncoder::new(&mut writer))
                .map_err(|e| encode_error(e.to_string()))?;
        }
        MapFormat::Png16 => {
            let levels = quantise(map, u16::MAX as f32).map(|v| v as u16).collect();
            let image: ImageBuffer<Luma<u16>, Vec<u16>> =
                ImageBuffer::from_raw(width as u32, height as u32, levels)
                    .expect("one level per map pixel");
            image
                .write_with_encoder(PngEncoder::new(&mut writer))
                .map_err(|e| encode_error(e.to_string()))?;
        }
    }

    let file = writer
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(write_error)
}

/// Clamps each score to `0..=1` and rounds it to the nearest of `max + 1` levels.
fn quantise(map: &AnomalyMap, max: f32) -> impl Iterator<Item = f32> + '_ {
    map.data
        .iter()
        .map(move |&v| (v.clamp(0.0, 1.0) * max).round())
}

fn read_npy<R: Read>(path: &Path, reader: R, length: u64) -> Result<AnomalyMap, MapIoError> {
    let decode_error = |e: io::Error| MapIoError::Decode {
        path: path.to_owned(),
        format: "NumPy .npy",
        message: e.to_string(),
    };

    let npy = npyz::NpyFile::new(reader).map_err(decode_error)?;
    let shape = npy.shape().to_vec();
    let (height, width) = match shape[..] {
        [h, w] | [1, h, w] | [h, w, 1] => (h, w),
        _ => {
            return Err(MapIoError::Shape {
                path: path.to_owned(),
                shape,
            })
        }
    };
    check_size(path, width, height)?;
    let (width, height) = (width as usize, height as usize);

    let dtype = npy.dtype();
    let float_size = match &dtype {
        npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float => t.size_field(),
        _ => 0,
    };
    // A damaged header can claim a shape far larger than the file; reading it would first
    // allocate the whole claimed size.
    let needed = (width * height) as u64 * float_size;
    if float_size > 0 && needed > length {
        return Err(MapIoError::Decode {
            path: path.to_owned(),
            format: "NumPy .npy",
            message: format!(
                "shape ({height}, {width}) needs {needed} bytes of data, but the file holds only {length} bytes"
            ),
        });
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    let stored: Vec<f32> = match float_size {
        4 => npy.into_vec::<f32>().map_err(decode_error)?,
        8 => {
            let wide = npy.into_vec::<f64>().map_err(decode_error)?;
            narrow(path, &wide, width, height, fortran)?
        }
        _ => {
            return Err(MapIoError::Dtype {
                path: path.to_owned(),
                dtype: dtype.descr(),
            })
        }
    };

    // Fortran order stores columns one after another. A squeezed axis of length 1 does not
    // change that.
    let data = if fortran {
        let mut rows = vec![0.0f32; width * height];
        for (k, &v) in stored.iter().enumerate() {
            let (y, x) = (k % height, k / height);
            rows[y * width + x] = v;
        }
        rows
    } else {
        stored
    };
    Ok(AnomalyMap::from_vec(width, height, data))
}

/// Largest `.npy` header accepted, in bytes: NumPy's own reader (`max_header_size`, NumPy 1.24
/// and later) rejects longer ones too.
const MAX_NPY_HEADER: usize = 10_000;

/// Deepest bracket nesting accepted in a `.npy` header. A map's header,
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (h, w), }`, nests two deep. The
/// header parser that npyz uses takes time exponential in the depth of a damaged nesting, so
/// deeper headers are rejected before it runs.
const MAX_NPY_NESTING: usize = 6;

/// Checks the length and bracket nesting of a `.npy` header; `reader` starts at the magic
/// string.
fn check_npy_header<R: Read>(path: &Path, reader: &mut R) -> Result<(), MapIoError> {
    let invalid = |message: String| MapIoError::Decode {
        path: path.to_owned(),
        format: "NumPy .npy",
        message,
    };
    let mut prefix = [0u8; 8];
    reader
        .read_exact(&mut prefix)
        .map_err(|e| invalid(e.to_string()))?;
    let length = if prefix[6] == 1 {
        let mut raw = [0u8; 2];
        reader
            .read_exact(&mut raw)
            .map_err(|e| invalid(e.to_string()))?;
        u16::from_le_bytes(raw) as usize
    } else {
        let mut raw = [0u8; 4];
        reader
            .read_exact(&mut raw)
            .map_err(|e| invalid(e.to_string()))?;
        u32::from_le_bytes(raw) as usize
    };
    if length > MAX_NPY_HEADER {
        return Err(invalid(format!(
            "the header is {length} bytes long, more than the {MAX_NPY_HEADER} NumPy accepts"
        )));
    }
    let mut header = vec![0u8; length];
    reader
        .read_exact(&mut header)
        .map_err(|e| invalid(format!("the header is cut short: {e}")))?;
    let mut depth = 0usize;
    for &byte in &header {
        match byte {
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NPY_NESTING {
            return Err(invalid(format!(
                "the header nests brackets more than {MAX_NPY_NESTING} deep"
            )));
        }
    }
    Ok(())
}

/// Converts float64 scores to float32, rejecting values that are not finite in float32.
/// `fortran` marks `wide` as stored column by column, which only changes the position that
/// the error reports.
fn narrow(
    path: &Path,
    wide: &[f64],
    width: usize,
    height: usize,
    fortran: bool,
) -> Result<Vec<f32>, MapIoError> {
    let mut narrow = Vec::with_capacity(wide.len());
    for (k, &v) in wide.iter().enumerate() {
        let single = v as f32;
        if !single.is_finite() {
            let (x, y) = if fortran {
                (k / height, k % height)
            } else {
                (k % width, k / width)
            };
            return Err(MapIoError::NonFinite {
                path: path.to_owned(),
                x,
                y,
                value: v,
            });
        }
        narrow.push(single);
    }
    Ok(narrow)
}

fn read_tiff<R: Read + Seek>(path: &Path, reader: R) -> Result<AnomalyMap, MapIoError> {
    use tiff::decoder::{Decoder, DecodingResult};
    let decode_error = |e: tiff::TiffError| MapIoError::Decode {
        path: path.to_owned(),
        format: "TIFF",
        message: e.to_string(),
    };
    let samples_error = |found: String| MapIoError::TiffSamples {
        path: path.to_owned(),
        found,
    };

    let mut decoder = Decoder::new(reader).map_err(decode_error)?;
    let (width, height) = decoder.dimensions().map_err(decode_error)?;
    check_size(path, width as u64, height as u64)?;
    let (width, height) = (width as usize, height as usize);
    let colour = decoder.colortype().map_err(decode_error)?;
    if !matches!(colour, tiff::ColorType::Gray(32 | 64)) {
        return Err(samples_error(format!("{colour:?} samples")));
    }

    let data = match decoder.read_image().map_err(decode_error)? {
        DecodingResult::F32(data) => data,
        DecodingResult::F64(wide) => narrow(path, &wide, width, height, false)?,
        DecodingResult::U32(_) | DecodingResult::I32(_) => {
            return Err(samples_error("32-bit integer samples".to_owned()))
        }
        DecodingResult::U64(_) | DecodingResult::I64(_) => {
            return Err(samples_error("64-bit integer samples".to_owned()))
        }
        _ => return Err(samples_error(format!("{colour:?} samples"))),
    };
    if data.len() != width * height {
        return Err(samples_error(format!(
            "{} samples for {width}x{height} pixels",
            data.len()
        )));
    }
    Ok(AnomalyMap::from_vec(width, height, data))
}

fn read_png<R: BufRead + Seek>(
    path: &Path,
    reader: R,
) -> Result<(AnomalyMap, MapFormat), MapIoError> {
    use image::ImageDecoder;
    let decode_error = |e: image::ImageError| MapIoError::Decode {
        path: path.to_owned(),
        format: "PNG",
        message: e.to_string(),
    };

    let decoder = image::codecs::png::PngDecoder::new(reader).map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    check_size(path, width as u64, height as u64)?;
    let colour = decoder.color_type();
    let image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;

    let (width, height) = (width as usize, height as usize);
    match image {
        DynamicImage::ImageLuma8(gray) => {
            let data = gray
                .into_raw()
                .into_iter()
                .map(|v| v as f32 / 255.0)
                .collect();
            Ok((AnomalyMap::from_vec(width, height, data), MapFormat::Png8))
        }
        DynamicImage::ImageLuma16(gray) => {
            let data = gray
                .into_raw()
                .into_iter()
                .map(|v| v as f32 / 65535.0)
                .collect();
            Ok((AnomalyMap::from_vec(width, height, data), MapFormat::Png16))
        }
        _ => Err(MapIoError::PngColor {
            path: path.to_owned(),
            found: format!("{colour:?}"),
        }),
    }
}

fn check_size(path: &Path, width: u64, height: u64) -> Result<(), MapIoError> {
    match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if size_is_accepted(w, h) => Ok(()),
        _ => Err(MapIoError::Size {
            path: path.to_owned(),
            width,
            height,
        }),
    }
}

fn check_finite(path: &Path, map: &AnomalyMap) -> Result<(), MapIoError> {
    match map.data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(k) => Err(MapIoError::NonFinite {
            path: path.to_owned(),
            x: k % map.width,
            y: k / map.width,
            value: map.data[k] as f64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn sample_map() -> AnomalyMap {
        AnomalyMap::from_vec(3, 2, vec![-1.5, 0.0, 0.25, 1.0, 3.75e-3, 1.0e6])
    }

    /// Writes a `.npy` file of `values` with the given dtype, shape and order.
    fn write_npy<T: npyz::Serialize + Copy>(
        path: &Path,
        dtype: &str,
        shape: &[u64],
        order: npyz::Order,
        values: &[T],
    ) {
        use npyz::WriterBuilder;
        let dtype = npyz::DType::Plain(dtype.parse().unwrap());
        let mut file = File::create(path).unwrap();
        let mut npy = npyz::WriteOptions::new()
            .dtype(dtype)
            .shape(shape)
            .order(order)
            .writer(&mut file)
            .begin_nd()
            .unwrap();
        npy.extend(values.iter().copied()).unwrap();
        npy.finish().unwrap();
    }

    fn leftover_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn npy_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.npy");
        write_map(&path, &sample_map(), MapFormat::Npy).unwrap();
        let (map, format) = read_map(&path).unwrap();
        assert_eq!(format, MapFormat::Npy);
        assert_eq!(map, sample_map());
        assert!(leftover_files(dir.path()).is_empty());
    }

    #[test]
    fn tiff_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.tiff");
        write_map(&path, &sample_map(), MapFormat::Tiff).unwrap();
        let (map, format) = read_map(&path).unwrap();
        assert_eq!(format, MapFormat::Tiff);
        assert_eq!(map, sample_map());
    }

    #[test]
    fn png_round_trip_quantises_and_clamps() {
        let dir = tempfile::tempdir().unwrap();
        let map = AnomalyMap::from_vec(4, 1, vec![-0.5, 0.3, 0.5, 2.0]);
        for (format, levels) in [(MapFormat::Png8, 255.0f32), (MapFormat::Png16, 65535.0)] {
            let path = dir.path().join(format!("map-{format}.png"));
            write_map(&path, &map, format).unwrap();
            let (back, read_format) = read_map(&path).unwrap();
            assert_eq!(read_format, format);
            assert_eq!((back.width, back.height), (4, 1));
            assert_eq!(back.data[0], 0.0, "{format}: negative clamps to 0");
            assert_eq!(back.data[3], 1.0, "{format}: above 1 clamps to 1");
            for (found, expected) in back.data[1..3].iter().zip([0.3f32, 0.5]) {
                assert!(
                    (found - expected).abs() <= 0.5 / levels + 1e-7,
                    "{format}: found {found}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn npy_float64_and_squeezed_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let values = [0.5f64, 1.5, 2.5, 3.5, 4.5, 5.5];
        let expected = AnomalyMap::from_vec(3, 2, values.iter().map(|&v| v as f32).collect());
        for shape in [&[2u64, 3][..], &[1, 2, 3], &[2, 3, 1]] {
            let path = dir.path().join("wide.npy");
            write_npy(&path, "<f8", shape, npyz::Order::C, &values);
            let (map, _) = read_map(&path).unwrap();
            assert_eq!(map, expected, "shape {shape:?}");
        }
    }

    #[test]
    fn npy_fortran_and_big_endian() {
        let dir = tempfile::tempdir().unwrap();
        let expected = AnomalyMap::from_vec(3, 2, vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);

        // Column by column: (0, 10), (1, 11), (2, 12).
        let path = dir.path().join("fortran.npy");
        let columns = [0.0f32, 10.0, 1.0, 11.0, 2.0, 12.0];
        write_npy(&path, "<f4", &[2, 3], npyz::Order::Fortran, &columns);
        assert_eq!(read_map(&path).unwrap().0, expected);

        let path = dir.path().join("big.npy");
        write_npy(&path, ">f4", &[2, 3], npyz::Order::C, &expected.data);
        assert_eq!(read_map(&path).unwrap().0, expected);
    }

    #[test]
    fn npy_nan_names_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.npy");
        write_npy(
            &path,
            "<f4",
            &[2, 3],
            npyz::Order::C,
            &[0.0f32, 0.0, 0.0, 0.0, f32::NAN, 0.0],
        );
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("NaN at (x=1, y=1)"), "{msg}");
        assert!(msg.contains("nan_to_num"), "{msg}");
    }

    #[test]
    fn npy_float64_overflow_is_not_finite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.npy");
        write_npy(&path, "<f8", &[1, 2], npyz::Order::C, &[0.0f64, 1e300]);
        let err = read_map(&path).unwrap_err();
        assert!(
            matches!(err, MapIoError::NonFinite { x: 1, y: 0, value, .. } if value == 1e300),
            "{err}"
        );
    }

    #[test]
    fn tiff_infinity_names_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inf.tiff");
        let mut file = File::create(&path).unwrap();
        tiff::encoder::TiffEncoder::new(&mut file)
            .unwrap()
            .write_image::<tiff::encoder::colortype::Gray32Float>(
                2,
                2,
                &[0.0, 0.0, f32::INFINITY, 0.0],
            )
            .unwrap();
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("inf at (x=0, y=1)"), "{msg}");
    }

    #[test]
    fn npy_integer_dtype_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("int.npy");
        write_npy(&path, "<i8", &[1, 2], npyz::Order::C, &[1i64, 2]);
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("'<i8'"), "{msg}");
        assert!(msg.contains("float32"), "{msg}");
        assert!(msg.contains("float64"), "{msg}");
        assert!(msg.contains("astype"), "{msg}");
    }

    #[test]
    fn npy_wrong_rank_names_shape() {
        let dir = tempfile::tempdir().unwrap();
        for shape in [&[2u64, 3, 4][..], &[6], &[3, 1, 2, 1]] {
            let path = dir.path().join("rank.npy");
            let n = shape.iter().product::<u64>() as usize;
            write_npy(&path, "<f4", shape, npyz::Order::C, &vec![0.0f32; n]);
            let err = read_map(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, MapIoError::Shape { .. }), "{msg}");
            assert!(msg.contains(&format!("{shape:?}")), "{msg}");
            assert!(msg.contains("squeeze"), "{msg}");
        }
    }

    #[test]
    fn npy_empty_side_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.npy");
        write_npy::<f32>(&path, "<f4", &[0, 3], npyz::Order::C, &[]);
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("is 3x0"), "{msg}");
    }

    #[test]
    fn truncated_npy_is_decode_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.npy");
        write_npy(&path, "<f4", &[2, 3], npyz::Order::C, &[0.0f32; 6]);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let err = read_map(&path).unwrap_err();
        assert!(matches!(err, MapIoError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("export it again"), "{err}");
    }

    #[test]
    fn missing_file_names_path() {
        let err = read_map("no/such/map.npy").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, MapIoError::Read { .. }), "{msg}");
        assert!(msg.contains("no/such/map.npy"), "{msg}");
        assert!(msg.contains("exists"), "{msg}");
    }

    #[test]
    fn unknown_content_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.npy");
        fs::write(&path, b"x,y,score\n").unwrap();
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("not a .npy, TIFF or PNG"), "{msg}");
    }

    #[test]
    fn rgb_png_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        RgbImage::from_pixel(2, 2, Rgb([1, 2, 3]))
            .save(&path)
            .unwrap();
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("Rgb8"), "{msg}");
        assert!(msg.contains("grayscale"), "{msg}");
    }

    #[test]
    fn integer_tiff_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gray8.tiff");
        let mut file = File::create(&path).unwrap();
        tiff::encoder::TiffEncoder::new(&mut file)
            .unwrap()
            .write_image::<tiff::encoder::colortype::Gray8>(2, 1, &[0, 255])
            .unwrap();
        let msg = read_map(&path).unwrap_err().to_string();
        assert!(msg.contains("Gray(8)"), "{msg}");
        assert!(msg.contains("float32"), "{msg}");
    }

    #[test]
    fn write_rejects_nan_and_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.npy");
        write_map(&path, &sample_map(), MapFormat::Npy).unwrap();

        let mut bad = sample_map();
        bad.data[5] = f32::NAN;
        let msg = write_map(&path, &bad, MapFormat::Npy)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("NaN at (x=2, y=1)"), "{msg}");
        assert_eq!(read_map(&path).unwrap().0, sample_map());
        assert!(leftover_files(dir.path()).is_empty());
    }

    #[test]
    fn write_rejects_empty_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.tiff");
        let err = write_map(&path, &AnomalyMap::filled(0, 4, 0.0), MapFormat::Tiff).unwrap_err();
        assert!(
            matches!(
                err,
                MapIoError::Size {
                    width: 0,
                    height: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn write_into_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("map.png");
        let err = write_map(&path, &sample_map(), MapFormat::Png8).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, MapIoError::Write { .. }), "{msg}");
        assert!(msg.contains("absent"), "{msg}");
        assert!(msg.contains("writable"), "{msg}");
    }

    #[test]
    fn write_replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.tif");
        write_map(&path, &AnomalyMap::filled(5, 5, 1.0), MapFormat::Tiff).unwrap();
        write_map(&path, &sample_map(), MapFormat::Tiff).unwrap();
        assert_eq!(read_map(&path).unwrap().0, sample_map());
        assert!(leftover_files(dir.path()).is_empty());
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            MapFormat::from_path(Path::new("a/b.NPY")).unwrap(),
            MapFormat::Npy
        );
        assert_eq!(
            MapFormat::from_path(Path::new("b.tif")).unwrap(),
            MapFormat::Tiff
        );
        assert_eq!(
            MapFormat::from_path(Path::new("b.tiff")).unwrap(),
            MapFormat::Tiff
        );
        assert_eq!(
            MapFormat::from_path(Path::new("b.png")).unwrap(),
            MapFormat::Png16
        );
        let msg = MapFormat::from_path(Path::new("b.jpg"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("b.jpg"), "{msg}");
        assert!(msg.contains(".npy"), "{msg}");
        for format in MapFormat::ALL {
            let path = PathBuf::from(format!("map.{}", format.extension()));
            let chosen = MapFormat::from_path(&path).unwrap();
            assert_eq!(chosen.extension(), format.extension());
        }
    }
}
