//! Data sets in the MVTec AD layout:
//!
//! ```text
//! <root>/train/good/*                      defect-free training images
//! <root>/validation/good/*                 optional defect-free validation images
//! <root>/validation/<type>/*               optional labelled defect images (with masks)
//! <root>/test/good/*                       defect-free test images
//! <root>/test/<type>/*                     defective test images
//! <root>/ground_truth/<type>/<stem>_mask.* their masks, any non-zero pixel is a defect
//! ```
//!
//! Validation masks are looked up in `validation_ground_truth/<type>/` first, then in
//! `ground_truth/<type>/`. Hidden files and files without an image extension are skipped. Two
//! images of one folder may not share a file stem, because masks, maps and report rows are
//! matched to images by stem.

use std::path::{Path, PathBuf};

use crate::imageio::{image_dimensions, is_image_path, ImageError};

/// Name of the folder that contains defect-free images in every split.
pub const GOOD: &str = "good";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("data folder {0} not found; pass the folder that contains train/good")]
    MissingRoot(PathBuf),
    #[error("{0} has no images; a data set needs defect-free training images in train/good")]
    EmptyTrain(PathBuf),
    #[error("defect image {image} has no mask; expected {expected}")]
    MissingMask { image: PathBuf, expected: PathBuf },
    #[error("{first} and {second} have the same file stem; masks, maps and report rows are matched to images by stem, so rename or remove one of them")]
    DuplicateStem { first: PathBuf, second: PathBuf },
    #[error(
        "defect image {image} has more than one mask ({first} and {second}); keep one of them"
    )]
    AmbiguousMask {
        image: PathBuf,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("failed to list {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One image of a labelled split; `defect_type` is `None` for defect-free images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    pub defect_type: Option<String>,
    pub mask: Option<PathBuf>,
}

impl Sample {
    pub fn is_defective(&self) -> bool {
        self.defect_type.is_some()
    }

    /// Returns a short display name, `<type>/<file name>`.
    pub fn name(&self) -> String {
        let file = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}/{}", self.defect_type.as_deref().unwrap_or(GOOD), file)
    }
}

/// The files of a data set, each list sorted by path.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub train: Vec<PathBuf>,
    pub validation: Vec<Sample>,
    pub test: Vec<Sample>,
}

impl Dataset {
    /// Lists the images of an MVTec-layout folder and pairs every defect image with its mask.
    pub fn open(root: &Path) -> Result<Self, DatasetError> {
        if !root.is_dir() {
            return Err(DatasetError::MissingRoot(root.to_owned()));
        }
        let train_dir = root.join("train").join(GOOD);
        let train = if train_dir.is_dir() {
            list_images(&train_dir)?
        } else {
            Vec::new()
        };
        if train.is_empty() {
            return Err(DatasetError::EmptyTrain(train_dir));
        }
        let validation = list_split(
            root,
            "validation",
            &["validation_ground_truth", "ground_truth"],
        )?;
        let test = list_split(root, "test", &["ground_truth"])?;
        Ok(Self {
            root: root.to_owned(),
            train,
            validation,
            test,
        })
    }

    /// Lists only the test split of an MVTec-layout folder, for evaluating a fitted model on
    /// data without training images.
    pub fn open_test(root: &Path) -> Result<Vec<Sample>, DatasetError> {
        if !root.is_dir() {
            return Err(DatasetError::MissingRoot(root.to_owned()));
        }
        list_split(root, "test", &["ground_truth"])
    }

    /// Reads the header of every image and mask, so that unreadable files, images over the size
    /// limits and masks whose size differs from their image are reported before any long work.
    /// Returns the `(width, height)` of each training image, in the order of `train`.
    ///
    /// Only headers are read: a file whose pixel data is truncated still fails later, when it
    /// is decoded, with an error that names it.
    pub fn check_files(&self) -> Result<Vec<(u32, u32)>, DatasetError> {
        let train = self
            .train
            .iter()
            .map(|path| image_dimensions(path))
            .collect::<Result<Vec<_>, _>>()?;
        for sample in self.validation.iter().chain(&self.test) {
            let (width, height) = image_dimensions(&sample.path)?;
            let Some(mask) = &sample.mask else {
                continue;
            };
            let (mask_width, mask_height) = image_dimensions(mask)?;
            if (mask_width, mask_height) != (width, height) {
                return Err(ImageError::MaskSize {
                    mask: mask.clone(),
                    image: sample.path.clone(),
                    mask_width: mask_width as usize,
                    mask_height: mask_height as usize,
                    image_width: width as usize,
                    image_height: height as usize,
                }
                .into());
            }
        }
        Ok(train)
    }

    /// Defect-free validation images.
    pub fn validation_good(&self) -> impl Iterator<Item = &Path> {
        self.validation
            .iter()
            .filter(|s| !s.is_defective())
            .map(|s| s.path.as_path())
    }
}

/// Lists the image files directly in `dir`, sorted, skipping hidden and non-image files.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DatasetError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_file() {
            continue;
        }
        if !is_image_path(&path) {
            tracing::debug!(path = %path.display(), "skipping a file without an image extension");
            continue;
        }
        out.push(path);
    }
    out.sort();
    check_unique_stems(&out)?;
    Ok(out)
}

/// Rejects two files of a sorted list that share a file stem, such as `a.png` and `a.jpg`.
pub fn check_unique_stems(sorted: &[PathBuf]) -> Result<(), DatasetError> {
    let mut by_stem: Vec<(&std::ffi::OsStr, &PathBuf)> = sorted
        .iter()
        .filter_map(|p| p.file_stem().map(|s| (s, p)))
        .collect();
    by_stem.sort();
    for pair in by_stem.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(DatasetError::DuplicateStem {
                first: pair[0].1.clone(),
                second: pair[1].1.clone(),
            });
        }
    }
    Ok(())
}

fn list_split(root: &Path, split: &str, mask_roots: &[&str]) -> Result<Vec<Sample>, DatasetError> {
    let dir = root.join(split);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut types: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|source| DatasetError::Io {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    types.sort();

    let mut samples = Vec::new();
    for defect_type in types {
        let images = list_images(&dir.join(&defect_type))?;
        for path in images {
            if defect_type == GOOD {
                samples.push(Sample {
                    path,
                    defect_type: None,
                    mask: None,
                });
                continue;
            }
            let mask = find_mask(root, mask_roots, &defect_type, &path)?;
            samples.push(Sample {
                path,
                defect_type: Some(defect_type.clone()),
                mask: Some(mask),
            });
        }
    }
    Ok(samples)
}

fn find_mask(
    root: &Path,
    mask_roots: &[&str],
    defect_type: &str,
    image: &Path,
) -> Result<PathBuf, DatasetError> {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected_stem = format!("{stem}_mask");
    for mask_root in mask_roots {
        let dir = root.join(mask_root).join(defect_type);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                is_image_path(p)
                    && p.file_stem().map(|s| s.to_string_lossy() == expected_stem) == Some(true)
            })
            .collect();
        found.sort();
        match &found[..] {
            [] => continue,
            [only] => return Ok(only.clone()),
            [first, second, ..] => {
                return Err(DatasetError::AmbiguousMask {
                    image: image.to_owned(),
                    first: first.clone(),
                    second: second.clone(),
                })
            }
        }
    }
    Err(DatasetError::MissingMask {
        image: image.to_owned(),
        expected: root
            .join(mask_roots[mask_roots.len() - 1])
            .join(defect_type)
            .join(format!("{expected_stem}.png")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"").unwrap();
    }

    #[test]
    fn lists_layout_and_pairs_masks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("train/good/001.png"));
        touch(&root.join("train/good/000.PNG"));
        touch(&root.join("train/good/.hidden.png"));
        touch(&root.join("train/good/notes.txt"));
        touch(&root.join("test/good/000.png"));
        touch(&root.join("test/crack/005.png"));
        touch(&root.join("ground_truth/crack/005_mask.png"));

        let ds = Dataset::open(root).unwrap();
        let names: Vec<_> = ds
            .train
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["000.PNG", "001.png"]);
        assert_eq!(ds.test.len(), 2);
        assert_eq!(ds.test[0].defect_type.as_deref(), Some("crack"));
        assert_eq!(
            ds.test[0].mask.as_deref(),
            Some(root.join("ground_truth/crack/005_mask.png").as_path())
        );
        assert!(!ds.test[1].is_defective());
        assert!(ds.validation.is_empty());
    }

    #[test]
    fn missing_mask_names_image_and_expected_mask() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("train/good/000.png"));
        touch(&root.join("test/hole/007.png"));
        let err = Dataset::open(root).unwrap_err().to_string();
        assert!(
            err.contains("007.png") && err.contains("007_mask.png"),
            "{err}"
        );
    }

    #[test]
    fn empty_train_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("train/good")).unwrap();
        let err = Dataset::open(dir.path()).unwrap_err();
        assert!(matches!(err, DatasetError::EmptyTrain(_)));
    }
}
