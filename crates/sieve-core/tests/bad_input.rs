//! Bad input that users hand sieve: damaged and unusual images, masks that differ from their
//! image, ambiguous data sets. Each case must end in an image read correctly or in an error that
//! names the file and the fix, never in a panic.

use std::fs;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageBuffer, Luma, LumaA, Rgb, RgbImage, RgbaImage};
use sieve_core::dataset::{Dataset, DatasetError};
use sieve_core::imageio::{
    image_dimensions, is_image_path, load_mask, load_mask_for, load_rgb, ImageError, MAX_PIXELS,
    MAX_SIDE,
};
use sieve_core::mapio::{decode_map, read_map, write_map, MapFormat, MapIoError};

/// CRC-32 (IEEE 802.3, as PNG uses it), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Returns a PNG file that holds a header for an 8-bit grayscale image of the given size and
/// an image data chunk with no pixels: enough for the size to be read, too little to decode.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 0 (grayscale), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    // A zlib stream of zero bytes.
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// Returns a 16x12 RGB gradient with varied pixels, so truncation cuts real data.
fn gradient() -> RgbImage {
    RgbImage::from_fn(16, 12, |x, y| Rgb([(x * 15) as u8, (y * 20) as u8, 128]))
}

fn assert_names(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "{word:?} missing in: {message}");
    }
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn truncated_png_names_file_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.png");
    gradient().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");
    assert_names(
        &err.to_string(),
        &["cut.png", "truncated", "export it again"],
    );
}

#[test]
fn truncated_jpeg_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jpg");
    gradient().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    // Keep the headers and cut the entropy-coded data short.
    fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();

    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");
    assert_names(&err.to_string(), &["cut.jpg", "export it again"]);
}

#[test]
fn text_with_image_extension_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["notes.png", "notes.JPG", "empty.png"] {
        let path = dir.path().join(name);
        let bytes: &[u8] = if name == "empty.png" {
            b""
        } else {
            b"defect list: 003 scratch\n"
        };
        fs::write(&path, bytes).unwrap();
        let err = load_rgb(&path).unwrap_err();
        assert_names(&err.to_string(), &[name, "not an image"]);
        assert!(image_dimensions(&path).is_err(), "{name}");
    }
}

#[test]
fn zero_sized_png_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (width, height) in [(0, 8), (8, 0), (0, 0)] {
        let path = dir.path().join(format!("zero-{width}x{height}.png"));
        fs::write(&path, png_header_only(width, height)).unwrap();
        let err = load_rgb(&path).unwrap_err();
        // The PNG decoder rejects a zero side in the header before sieve's own size check.
        assert_names(&err.to_string(), &[&format!("zero-{width}x{height}.png")]);
    }
}

#[test]
fn huge_image_rejected_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line-scan.png");
    // The file holds no pixel data, so only the header check can produce this error.
    fs::write(&path, png_header_only(8000, 8000)).unwrap();

    let err = load_rgb(&path).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Size {
                width: 8000,
                height: 8000,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert_names(
        &message,
        &[
            "line-scan.png",
            "8000x8000",
            &MAX_PIXELS.to_string(),
            "downscale or tile",
        ],
    );
    assert!(matches!(
        load_mask(&path).unwrap_err(),
        ImageError::Size { .. }
    ));

    // A side longer than MAX_SIDE is rejected even when the pixel count is small.
    let path = dir.path().join("strip.png");
    fs::write(&path, png_header_only(MAX_SIDE + 1, 1)).unwrap();
    assert!(matches!(
        image_dimensions(&path).unwrap_err(),
        ImageError::Size { height: 1, .. }
    ));
}

#[test]
fn pixel_limit_is_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let at_limit = dir.path().join("at.png");
    fs::write(&at_limit, png_header_only(8192, 4096)).unwrap();
    assert_eq!(8192 * 4096, MAX_PIXELS);
    assert_eq!(image_dimensions(&at_limit).unwrap(), (8192, 4096));

    let over = dir.path().join("over.png");
    fs::write(&over, png_header_only(8192, 4097)).unwrap();
    assert!(image_dimensions(&over).is_err());
}

#[test]
fn gray_palette_rgb16_and_alpha_read_as_rgb() {
    let dir = tempfile::tempdir().unwrap();

    let gray = dir.path().join("gray.png");
    GrayImage::from_raw(2, 1, vec![0, 255])
        .unwrap()
        .save(&gray)
        .unwrap();
    let img = load_rgb(&gray).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [0.0; 3]);
    assert_eq!(img.get_pixel(1, 0).0, [1.0; 3]);

    let gray_alpha = dir.path().join("gray-alpha.png");
    ImageBuffer::<LumaA<u8>, Vec<u8>>::from_pixel(1, 1, LumaA([255, 0]))
        .save(&gray_alpha)
        .unwrap();
    assert_eq!(load_rgb(&gray_alpha).unwrap().get_pixel(0, 0).0, [1.0; 3]);

    let rgb16 = dir.path().join("rgb16.png");
    ImageBuffer::<Rgb<u16>, Vec<u16>>::from_pixel(1, 1, Rgb([65535, 0, 32768]))
        .save(&rgb16)
        .unwrap();
    let [r, g, b] = load_rgb(&rgb16).unwrap().get_pixel(0, 0).0;
    assert_eq!((r, g), (1.0, 0.0));
    assert!((b - 32768.0 / 65535.0).abs() < 1e-6, "{b}");

    // A palette PNG: index 0 is red, index 1 is blue.
    let palette = dir.path().join("palette.png");
    {
        let file = fs::File::create(&palette).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 2, 1);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![255, 0, 0, 0, 0, 255]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[1, 0]).unwrap();
    }
    let img = load_rgb(&palette).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [0.0, 0.0, 1.0]);
    assert_eq!(img.get_pixel(1, 0).0, [1.0, 0.0, 0.0]);
}

#[test]
fn non_square_keeps_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.png");
    // 7 wide, 3 high, with a single bright pixel at column 6, row 2.
    let mut wide = GrayImage::new(7, 3);
    wide.put_pixel(6, 2, Luma([255]));
    wide.save(&path).unwrap();

    let img = load_rgb(&path).unwrap();
    assert_eq!((img.width(), img.height()), (7, 3));
    assert_eq!(img.get_pixel(6, 2).0, [1.0; 3]);
    assert_eq!(image_dimensions(&path).unwrap(), (7, 3));
}

#[test]
fn upper_case_extensions_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("train/good");
    for name in ["a.PNG", "b.JPG", "c.Jpeg", "d.TIF", "e.TIFF", "f.BMP"] {
        let path = good.join(name);
        fs::create_dir_all(&good).unwrap();
        gradient().save_with_format(&path, format_of(name)).unwrap();
        assert!(is_image_path(&path), "{name}");
        let img = load_rgb(&path).unwrap();
        assert_eq!((img.width(), img.height()), (16, 12), "{name}");
    }
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.train.len(), 6);
}

fn format_of(name: &str) -> image::ImageFormat {
    let ext = name.rsplit('.').next().unwrap().to_ascii_lowercase();
    image::ImageFormat::from_extension(ext).unwrap()
}

#[test]
fn hidden_and_other_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("train/good");
    fs::create_dir_all(good.join(".thumbnails")).unwrap();
    gradient().save(good.join("000.png")).unwrap();
    write(&good.join(".001.png"), b"editor swap file");
    write(&good.join("._000.png"), b"resource fork");
    write(&good.join("Thumbs.db"), b"thumbnail cache");
    write(&good.join("readme.txt"), b"notes");
    gradient().save(good.join(".thumbnails/000.png")).unwrap();
    write(&dir.path().join("test/.DS_Store/x.png"), b"not a split");

    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.train, vec![good.join("000.png")]);
    assert!(dataset.test.is_empty());
    assert_eq!(dataset.check_files().unwrap(), vec![(16, 12)]);
}

#[test]
fn multi_channel_mask_counts_any_channel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rgb_mask.png");
    // Defect pixels in red only, green only, blue only; the fourth pixel is background.
    let mask = RgbImage::from_raw(4, 1, vec![255, 0, 0, 0, 1, 0, 0, 0, 236, 0, 0, 0]).unwrap();
    mask.save(&path).unwrap();
    assert_eq!(load_mask(&path).unwrap().data, [true, true, true, false]);

    // Alpha alone does not mark a defect: a transparent black pixel stays background.
    let path = dir.path().join("rgba_mask.png");
    RgbaImage::from_raw(2, 1, vec![255, 255, 255, 255, 0, 0, 0, 0])
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(load_mask(&path).unwrap().data, [true, false]);

    // A 16-bit mask whose defect value is 1, the smallest non-zero level.
    let path = dir.path().join("gray16_mask.png");
    ImageBuffer::<Luma<u16>, Vec<u16>>::from_raw(2, 1, vec![0, 1])
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(load_mask(&path).unwrap().data, [false, true]);
}

#[test]
fn mask_of_other_size_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mask = dir.path().join("005_mask.png");
    GrayImage::new(12, 16).save(&mask).unwrap();
    // A mask with width and height swapped, as a rotated export produces.
    let err = load_mask_for(&mask, Path::new("test/crack/005.png"), 16, 12).unwrap_err();
    assert_names(
        &err.to_string(),
        &["005_mask.png", "12x16", "005.png", "16x12"],
    );
}

/// Writes a data set with one training image, one defect image and its mask, and returns the
/// mask's path.
fn dataset_with_defect(root: &Path, image: RgbImage, mask: GrayImage) -> PathBuf {
    fs::create_dir_all(root.join("train/good")).unwrap();
    gradient().save(root.join("train/good/000.png")).unwrap();
    fs::create_dir_all(root.join("test/crack")).unwrap();
    fs::create_dir_all(root.join("ground_truth/crack")).unwrap();
    image.save(root.join("test/crack/005.png")).unwrap();
    let mask_path = root.join("ground_truth/crack/005_mask.png");
    mask.save(&mask_path).unwrap();
    mask_path
}

#[test]
fn check_files_finds_mask_of_other_size() {
    let dir = tempfile::tempdir().unwrap();
    dataset_with_defect(dir.path(), gradient(), GrayImage::new(8, 8));
    let dataset = Dataset::open(dir.path()).unwrap();
    let err = dataset.check_files().unwrap_err();
    assert!(
        matches!(err, DatasetError::Image(ImageError::MaskSize { .. })),
        "{err}"
    );
    assert_names(&err.to_string(), &["005_mask.png", "8x8", "16x12"]);
}

#[test]
fn check_files_finds_damaged_test_image() {
    let dir = tempfile::tempdir().unwrap();
    dataset_with_defect(dir.path(), gradient(), GrayImage::new(16, 12));
    write(&dir.path().join("test/good/010.png"), b"");
    let dataset = Dataset::open(dir.path()).unwrap();
    let err = dataset.check_files().unwrap_err();
    assert_names(&err.to_string(), &["010.png", "not an image"]);
}

#[test]
fn duplicate_stems_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("train/good");
    fs::create_dir_all(&good).unwrap();
    gradient().save(good.join("007.png")).unwrap();
    gradient().save(good.join("007.jpg")).unwrap();
    let err = Dataset::open(dir.path()).unwrap_err();
    assert!(matches!(err, DatasetError::DuplicateStem { .. }), "{err}");
    assert_names(
        &err.to_string(),
        &["007.jpg", "007.png", "rename or remove"],
    );
}

#[test]
fn duplicate_stems_in_test_split_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    dataset_with_defect(dir.path(), gradient(), GrayImage::new(16, 12));
    gradient()
        .save(dir.path().join("test/crack/005.bmp"))
        .unwrap();
    let err = Dataset::open(dir.path()).unwrap_err();
    assert_names(&err.to_string(), &["005.bmp", "005.png"]);
}

#[test]
fn two_masks_for_one_image_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    dataset_with_defect(dir.path(), gradient(), GrayImage::new(16, 12));
    GrayImage::new(16, 12)
        .save(dir.path().join("ground_truth/crack/005_mask.bmp"))
        .unwrap();
    let err = Dataset::open(dir.path()).unwrap_err();
    assert!(matches!(err, DatasetError::AmbiguousMask { .. }), "{err}");
    assert_names(
        &err.to_string(),
        &["005.png", "005_mask.bmp", "005_mask.png", "keep one"],
    );
}

#[test]
fn same_stem_in_other_folders_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    dataset_with_defect(dir.path(), gradient(), GrayImage::new(16, 12));
    fs::create_dir_all(dir.path().join("test/good")).unwrap();
    gradient()
        .save(dir.path().join("test/good/005.png"))
        .unwrap();
    gradient()
        .save(dir.path().join("train/good/005.png"))
        .unwrap();
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.test.len(), 2);
    assert_eq!(dataset.train.len(), 2);
}

#[test]
fn empty_train_good_names_folder() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("train/good");
    fs::create_dir_all(&good).unwrap();
    // Files that are skipped do not count as training images.
    write(&good.join(".hidden.png"), b"");
    write(&good.join("list.csv"), b"");
    let err = Dataset::open(dir.path()).unwrap_err();
    assert!(matches!(err, DatasetError::EmptyTrain(_)), "{err}");
    assert_names(
        &err.to_string(),
        &["train/good", "defect-free training images"],
    );
}

/// Returns a version 1.0 `.npy` header for `descr` and `shape`, padded as NumPy pads it.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

#[test]
fn npy_shape_larger_than_file_is_rejected() {
    // A header that claims a 16384x16384 map (1 GiB of float32) over 8 bytes of data must fail
    // without allocating the claimed size.
    let mut bytes = npy_header("<f4", "(16384, 16384)");
    bytes.extend_from_slice(&[0; 8]);
    let err = decode_map("claims-1-gib.npy", &bytes).unwrap_err();
    assert!(matches!(err, MapIoError::Size { .. }), "{err}");

    let mut bytes = npy_header("<f8", "(4096, 4096)");
    bytes.extend_from_slice(&[0; 8]);
    let err = decode_map("claims-128-mib.npy", &bytes).unwrap_err();
    assert!(matches!(err, MapIoError::Decode { .. }), "{err}");
    assert_names(
        &err.to_string(),
        &["claims-128-mib.npy", "134217728 bytes", "export it again"],
    );
}

#[test]
fn decoded_bytes_match_the_file_reader() {
    let dir = tempfile::tempdir().unwrap();
    let map = sieve_core::AnomalyMap::from_vec(3, 2, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    for format in MapFormat::ALL {
        let path = dir
            .path()
            .join(format!("map-{format}.{}", format.extension()));
        write_map(&path, &map, format).unwrap();
        let from_file = read_map(&path).unwrap();
        let from_bytes = decode_map(&path, &fs::read(&path).unwrap()).unwrap();
        assert_eq!(from_bytes, from_file, "{format}");
    }
}

#[test]
fn npy_header_nesting_is_limited() {
    // The dict and five brackets make six levels, the most accepted: the header parses, and the
    // missing data is the error.
    let bytes = npy_header("<f4", "(((((2, 3)))))");
    let err = decode_map("deep.npy", &bytes).unwrap_err();
    assert!(!err.to_string().contains("nests brackets"), "{err}");

    let bytes = npy_header("<f4", &format!("{}2, 3{}", "(".repeat(40), ")".repeat(40)));
    let err = decode_map("deeper.npy", &bytes).unwrap_err();
    assert_names(
        &err.to_string(),
        &["deeper.npy", "nests brackets more than 6 deep"],
    );
}
