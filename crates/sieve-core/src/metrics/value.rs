//! A metric result for reports: a number, or `null` with the reason it is undefined.

use serde::{Deserialize, Serialize};

use super::MetricError;

/// A metric value as reports store it, serialised as `{"value": 0.93, "reason": null}` or
/// `{"value": null, "reason": "AUROC is undefined because ..."}` and never as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub value: Option<f64>,
    pub reason: Option<String>,
}

impl From<Result<f64, MetricError>> for MetricValue {
    /// Keeps a finite value. An error, or a NaN or infinite value, becomes `None` with a reason.
    fn from(result: Result<f64, MetricError>) -> Self {
        match result {
            Ok(value) if value.is_finite() => Self {
                value: Some(value),
                reason: None,
            },
            Ok(value) => Self {
                value: None,
                reason: Some(format!(
                    "the metric computed to {value}, which is not finite"
                )),
            },
            Err(error) => Self {
                value: None,
                reason: Some(error.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{auroc, LabelClass};
    use super::*;

    #[test]
    fn metric_value_keeps_finite_value() {
        let value = MetricValue::from(Ok(0.75));
        assert_eq!(value.value, Some(0.75));
        assert_eq!(value.reason, None);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"value":0.75,"reason":null}"#);
    }

    #[test]
    fn metric_value_error_becomes_null_with_reason() {
        let value = MetricValue::from(auroc(&[0.1, 0.2], &[false, false]));
        assert_eq!(value.value, None);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(
            json,
            r#"{"value":null,"reason":"AUROC is undefined because the input contains no positive (anomalous) sample"}"#
        );
        let error = MetricError::OneClass {
            metric: "AUROC",
            missing: LabelClass::Positive,
        };
        assert_eq!(value.reason, Some(error.to_string()));
    }

    #[test]
    fn metric_value_nan_becomes_null() {
        let value = MetricValue::from(Ok(f64::NAN));
        assert_eq!(value.value, None);
        assert!(value.reason.is_some());
        let json = serde_json::to_string(&value).unwrap();
        assert!(json.starts_with(r#"{"value":null,"#), "{json}");
    }
}
