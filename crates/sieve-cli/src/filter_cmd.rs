//! `sieve filter`: the false-alarm filter on anomaly maps made by another tool.

use crate::args::FilterArgs;
use crate::progress::Bars;

pub fn filter(_args: &FilterArgs, _bars: Bars) -> anyhow::Result<()> {
    anyhow::bail!("sieve filter is not available yet")
}
