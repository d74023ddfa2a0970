//! Candidate regions and their descriptors: one value per [`Attribute`], serialised as a map
//! from attribute name to value.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::attribute::Attribute;

/// Axis-aligned bounding box in pixels, with `(x, y)` its top-left pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BBox {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl BBox {
    /// Returns whether pixel `(x, y)` lies inside the box.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        x >= self.x && x < self.x + self.width && y >= self.y && y < self.y + self.height
    }
}

/// The attribute values of one region, indexed by [`Attribute::index`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Descriptor {
    pub values: [f64; Attribute::ALL.len()],
}

impl Descriptor {
    pub fn get(&self, attribute: Attribute) -> f64 {
        self.values[attribute.index()]
    }

    pub fn set(&mut self, attribute: Attribute, value: f64) {
        self.values[attribute.index()] = value;
    }

    /// Collects the values of `attributes`, in that order: the input vector of a classifier.
    pub fn vector(&self, attributes: &[Attribute]) -> Vec<f64> {
        attributes.iter().map(|&a| self.get(a)).collect()
    }
}

impl Serialize for Descriptor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Attribute::ALL.len()))?;
        for attribute in Attribute::ALL {
            map.serialize_entry(attribute.name(), &self.get(attribute))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Descriptor {
    /// Reads a map from attribute name to value. Every attribute must be present, and a
    /// repeated name keeps its last value.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = BTreeMap::<String, f64>::deserialize(deserializer)?;

        let mut values = [f64::NAN; Attribute::ALL.len()];
        for (name, value) in &entries {
            let attribute = Attribute::from_name(name).map_err(D::Error::custom)?;
            values[attribute.index()] = *value;
        }
        let missing: Vec<&str> = Attribute::ALL
            .iter()
            .filter(|a| !entries.contains_key(a.name()))
            .map(|a| a.name())
            .collect();
        if !missing.is_empty() {
            return Err(D::Error::custom(format!(
                "descriptor is missing attributes {}; write a value for every attribute",
                missing.join(", ")
            )));
        }

        Ok(Descriptor { values })
    }
}

impl fmt::Display for Descriptor {
    /// Writes `name=value` pairs in descriptor order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attribute) in Attribute::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={:.4}", attribute.name(), self.get(*attribute))?;
        }
        Ok(())
    }
}

/// One connected component of a thresholded anomaly map, with its descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The component's label in the [`Labels`](super::Labels) it came from.
    pub label: u32,
    pub bbox: BBox,
    pub descriptor: Descriptor,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered() -> Descriptor {
        let mut values = [0.0; Attribute::ALL.len()];
        for (i, v) in values.iter_mut().enumerate() {
            *v = i as f64 + 0.5;
        }
        Descriptor { values }
    }

    #[test]
    fn descriptor_json_uses_names() {
        let json = serde_json::to_value(numbered()).unwrap();
        assert_eq!(json["area"], 0.5);
        assert_eq!(json["contrast"], 18.5);
        assert_eq!(json.as_object().unwrap().len(), Attribute::ALL.len());
    }

    #[test]
    fn descriptor_json_round_trip() {
        let candidate = Candidate {
            label: 3,
            bbox: BBox {
                x: 1,
                y: 2,
                width: 3,
                height: 4,
            },
            descriptor: numbered(),
        };
        let text = serde_json::to_string(&candidate).unwrap();
        let back: Candidate = serde_json::from_str(&text).unwrap();
        assert_eq!(back, candidate);
    }

    #[test]
    fn descriptor_json_rejects_unknown_name() {
        let err = serde_json::from_str::<Descriptor>(r#"{"size": 1.0}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"size\""), "{msg}");
        assert!(msg.contains("area"), "{msg}");
    }

    #[test]
    fn descriptor_json_names_missing() {
        let err = serde_json::from_str::<Descriptor>(r#"{"area": 1.0}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("missing"), "{msg}");
        assert!(msg.contains("contrast"), "{msg}");
        assert!(!msg.contains(" area"), "{msg}");
    }

    #[test]
    fn vector_follows_requested_order() {
        let d = numbered();
        let v = d.vector(&[Attribute::Contrast, Attribute::Area]);
        assert_eq!(v, vec![18.5, 0.5]);
    }

    #[test]
    fn bbox_contains_edges() {
        let b = BBox {
            x: 2,
            y: 1,
            width: 2,
            height: 1,
        };
        assert!(b.contains(2, 1));
        assert!(b.contains(3, 1));
        assert!(!b.contains(4, 1));
        assert!(!b.contains(2, 2));
        assert!(!b.contains(1, 1));
    }
}
