//! collection-status: what chains and sets a target holds, in duplicity's words.

use std::io::Write;

use crate::backend::Backend;
use crate::engine::collection::Collection;
use crate::engine::timestr;

pub fn collection_status(
    backend: &dyn Backend,
    out: &mut dyn Write,
    _json: bool,
) -> anyhow::Result<()> {
    let c = Collection::from_names(&backend.list()?);
    writeln!(out, "Found {} backup chain(s)", c.chains.len())?;
    for chain in &c.chains {
        writeln!(
            out,
            "Chain start time: {}",
            timestr::asctime_local(chain.start_time())
        )?;
        writeln!(
            out,
            "Chain end time: {}",
            timestr::asctime_local(chain.end_time())
        )?;
        writeln!(out, "Number of contained backup sets: {}", chain.sets.len())?;
    }
    Ok(())
}
